// The JavaScript half of api/files.rs: `FileInfo` turns `ModTime` into a `Date`.
(function (g) {
    const info = g.__aft_file_info;
    delete g.__aft_file_info;
    g.FileInfo = function FileInfo(path) {
        const r = info(path);
        if (r) r.ModTime = new Date(r.ModTime);
        return r;
    };
})(globalThis);
