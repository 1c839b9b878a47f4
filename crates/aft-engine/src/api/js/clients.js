// The JavaScript half of the transfer clients (api/clients/mod.rs is the Rust half):
// the client classes and `GetVFS`, over the native `__aft_clients` object (the constants
// are defined in Rust).
// Each client keeps a hidden handle into the Rust side; its fields are plain properties,
// sent to Rust at Connect(), and its Options object is sent with each call.
(function (g) {
    const N = g.__aft_clients;
    delete g.__aft_clients;
    const H = Symbol('aft client handle');

    function defaultOptions() {
        return {
            StopOnTransferError: false,
            UploadPolicy: 0, DownloadPolicy: 0,
            UploadWithTempName: false, DownloadWithTempName: false,
            DeleteSourceAfterUpload: false, DeleteSourceAfterDownload: false,
            AdjustTimeOnUpload: false, AdjustTimeOnDownload: false,
            VersionedUpload: false, VersionedDownload: false,
            VersionsToKeepRemote: 3, VersionsToKeepLocal: 3,
            OTFE: false, OTFEKey: '', OTFEKeyFromSecret: '',
            RecordHash: 'blake3',
        };
    }

    // Each type's fields and defaults, from aft-vfs's backend registry (declared once there),
    // parsed when the job makes its first client: most of the cost of this file otherwise,
    // for jobs that make none.
    let FIELDS;
    function fieldsOf(kind) {
        if (FIELDS === undefined) FIELDS = JSON.parse(N.fields);
        return FIELDS[kind];
    }

    // The fields as sent to Rust: every own scalar property but Options; empty strings
    // mean "not set".
    function fields(c) {
        const out = {};
        for (const k of Object.keys(c)) {
            const v = c[k];
            if (k === 'Options' || v === undefined || v === null || v === '') continue;
            if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
        }
        return JSON.stringify(out);
    }
    function options(c) {
        const o = c.Options;
        return JSON.stringify(Object.assign(defaultOptions(), (o && typeof o === 'object') ? o : {}));
    }
    // Every client connects on first use (and again after Close()), so Connect() is optional.
    function auto(c) { return fields(c); }
    function item(e) {
        if (e) e.ModTime = e.ModTime == null ? null : new Date(e.ModTime);
        return e;
    }
    function call(c, method, args) {
        return N.call(c[H], method, JSON.stringify(args), options(c), auto(c));
    }

    function Client() {}
    const proto = Client.prototype;
    proto.Connect = function Connect() { return N.connect(this[H], fields(this)); };
    proto.Close = function Close() { return N.close(this[H]); };
    proto.LastError = function LastError() { return N.lastError(this[H]); };
    for (const m of ['MakeDir', 'RenDir', 'DelDir', 'DelTree', 'DelFile', 'RenFile', 'Exists',
                     'Upload', 'Download', 'UploadFile', 'DownloadFile', 'Sync']) {
        proto[m] = { [m](...args) { return call(this, m, args); } }[m];
    }
    for (const m of ['ListDir', 'ListDirR', 'ListFiles', 'ListFilesR']) {
        proto[m] = { [m](...args) {
            const list = call(this, m, args);
            if (list) list.forEach(item);
            return list;
        } }[m];
    }
    proto.Stat = function Stat(path) { return item(call(this, 'Stat', [path])); };
    proto.CopyTo = function CopyTo(other, from, to) {
        if (!other || typeof other !== 'object' || other[H] === undefined) {
            throw new TypeError('CopyTo: the first argument must be another client (new SftpClient(), GetVFS("name"), ...)');
        }
        return call(this, 'CopyTo', [other[H], from, to, auto(other)]);
    };

    const byType = {};
    function define(name, kind) {
        const C = function () {
            if (!new.target) throw new TypeError(name + ' must be called with new');
            Object.defineProperty(this, H, { value: N.create(kind) });
            Object.assign(this, fieldsOf(kind));
            this.Options = defaultOptions();
        };
        Object.defineProperty(C, 'name', { value: name });
        C.prototype = Object.create(proto);
        C.prototype.constructor = C;
        g[name] = C;
        byType[kind] = C;
    }
    // One class per registry type: [["SftpClient", "sftp"], ...].
    for (const [name, kind] of JSON.parse(N.classes)) define(name, kind);

    g.GetVFS = function GetVFS(name) {
        const entry = N.entry(String(name));
        const type = String(entry.type || '').toLowerCase();
        const C = byType[type];
        if (!C) throw new Error('GetVFS: VFS Library entry "' + name + '" has unknown type "' + entry.type + '"');
        const c = new C();
        delete entry.type;
        Object.assign(c, entry);
        return c;
    };
})(globalThis);
