// The JavaScript half of api/dry_run.rs: calls outside the file systems are listed and
// answer as if they worked.
(function (g) {
    const skip = g.__aft_dry_skip;
    delete g.__aft_dry_skip;
    const text = (v) => {
        if (v === undefined || v === null) return "";
        if (typeof v === "string") return v;
        if (Array.isArray(v)) return v.map(text).join(" ");
        return String(v);
    };
    const passes = (name, describe, answer) => {
        if (typeof g[name] !== "function") return;
        g[name] = function (...args) {
            skip(name, describe(...args));
            return answer();
        };
    };
    passes("RunProgram", (p, a) => [text(p), text(a)].filter(Boolean).join(" "),
        () => ({ Ok: true, ExitCode: 0, Stdout: "", Stderr: "", TimedOut: false, Error: "" }));
    passes("SendMail", (from, to, subject) => "to " + text(to) + ": " + text(subject), () => true);
    for (const name of ["Zip", "Unzip", "TarGz", "UnTarGz", "PgpEncryptFile", "PgpDecryptFile", "PgpSignFile"]) {
        passes(name, (a, b) => text(a) + " -> " + text(b), () => true);
    }
    if (g.HttpCli) {
        const send = g.HttpCli.prototype.Do;
        g.HttpCli.prototype.Do = function (verb) {
            const method = String(verb).toUpperCase();
            if (method === "GET" && !this._q.SaveTo) return send.call(this, verb);
            skip("HttpCli." + method, this._q.Url + (this._q.SaveTo ? " (body saved to " + this._q.SaveTo + ")" : ""));
            return new g.HttpRes({ valid: true, status: 200, text: "", body: new Uint8Array(0), headers: [], error: "" });
        };
    }
    for (const cls of [g.FsWatcher, g.RemoteWatcher]) {
        if (!cls) continue;
        cls.prototype.Start = function (callback) {
            if (typeof callback !== "function") return;
            skip(this._kind + ".Start", this._dirs.map((d) => d.path).join(", "));
        };
    }
})(globalThis);
