//! The conformance suite against the real OpenSSH sshd started by `ci/peers/sshd.sh`.

mod support;

use std::sync::Arc;

use aft_vfs::Vfs;

aft_vfs::conformance_suite!(async || -> Arc<dyn Vfs> { Arc::new(support::sftp()) as Arc<dyn Vfs> });
