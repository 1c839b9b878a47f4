"""FTP + explicit FTPS server (pyftpdlib) for aft's FTP tests: MLSD/MLST and MFMT.

Usage: pyftpdlib_server.py ROOT USER PASS PORT CERT KEY PASV_FIRST PASV_LAST
"""
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer

root, user, password, port, cert, key, pasv_first, pasv_last = sys.argv[1:]

authorizer = DummyAuthorizer()
# e l r a d f m w M T: every permission, including MFMT (T).
authorizer.add_user(user, password, root, perm="elradfmwMT")

handler = TLS_FTPHandler
handler.certfile = cert
handler.keyfile = key
handler.authorizer = authorizer
handler.tls_control_required = False
handler.tls_data_required = False
handler.passive_ports = range(int(pasv_first), int(pasv_last) + 1)
handler.masquerade_address = "127.0.0.1"
handler.banner = "aft test pyftpdlib"

server = FTPServer(("127.0.0.1", int(port)), handler)
server.max_cons = 256
server.max_cons_per_ip = 0
server.serve_forever()
