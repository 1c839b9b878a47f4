// The JavaScript half of api/http.rs: the chainable `HttpCli` and the `HttpRes` it returns.
(function (g) {
    const send = g.__aft_http_do, basic = g.__aft_basic;
    delete g.__aft_http_do; delete g.__aft_basic;
    class HttpRes {
        constructor(r) { this._r = r; }
        IsValid() { return this._r.valid; }
        StatusCode() { return this._r.status; }
        BodyAsString() { return this._r.text; }
        BodyAsBytes() { return this._r.body; }
        BodyAsJSON() { return JSON.parse(this._r.text); }
        Header(name) {
            const n = String(name).toLowerCase();
            const v = this._r.headers.filter(h => h[0] === n).map(h => h[1]);
            return v.length ? v.join(", ") : "";
        }
        Headers() {
            const o = {};
            for (const [k, v] of this._r.headers) o[k] = (k in o) ? o[k] + ", " + v : v;
            return o;
        }
        Error() { return this._r.error; }
    }
    class HttpCli {
        constructor() {
            this._q = { Url: "", Timeout: 0, Headers: [], CaFile: "", Insecure: false, BodyFile: "", SaveTo: "" };
            this._body = undefined;
        }
        Url(u) { this._q.Url = String(u); return this; }
        Timeout(s) { this._q.Timeout = Number(s); return this; }
        Header(k, v) { this._q.Headers.push([String(k), String(v)]); return this; }
        ReqBody(s) { this._body = String(s); this._q.BodyFile = ""; return this; }
        ReqBodyBytes(b) { this._body = b; this._q.BodyFile = ""; return this; }
        ReqBodyJSON(o) { this.Header("Content-Type", "application/json"); return this.ReqBody(JSON.stringify(o)); }
        ReqBodyFromFile(path) { this._body = undefined; this._q.BodyFile = String(path); return this; }
        BasicAuth(user, pass) { return this.Header("Authorization", "Basic " + basic(String(user), String(pass))); }
        BearerToken(t) { return this.Header("Authorization", "Bearer " + String(t)); }
        CAFile(path) { this._q.CaFile = String(path); return this; }
        InsecureSkipVerify() { this._q.Insecure = true; return this; }
        SaveBodyTo(path) { this._q.SaveTo = String(path); return this; }
        Get() { return this.Do("GET"); }
        Post() { return this.Do("POST"); }
        Put() { return this.Do("PUT"); }
        Patch() { return this.Do("PATCH"); }
        Delete() { return this.Do("DELETE"); }
        Head() { return this.Do("HEAD"); }
        Do(verb) {
            const q = Object.assign({}, this._q, { Method: String(verb) });
            return new HttpRes(send(JSON.stringify(q), this._body));
        }
    }
    g.HttpCli = HttpCli;
    g.HttpRes = HttpRes;
})(globalThis);
