// The JavaScript half of api/text.rs: the `TextEncoder`/`TextDecoder` classes and
// `FormatDate`'s `Date` handling; each global is defined only if the engine does not
// already have it.
(function (g) {
    const enc = g.__aft_utf8_encode, dec = g.__aft_utf8_decode, fmt = g.__aft_format_date;
    delete g.__aft_utf8_encode; delete g.__aft_utf8_decode; delete g.__aft_format_date;
    if (typeof g.TextEncoder === "undefined") {
        g.TextEncoder = class TextEncoder {
            get encoding() { return "utf-8"; }
            encode(s) { return enc(s === undefined ? "" : String(s)); }
        };
    }
    if (typeof g.TextDecoder === "undefined") {
        g.TextDecoder = class TextDecoder {
            constructor(label, options) {
                const l = (label === undefined ? "utf-8" : String(label)).toLowerCase();
                if (l !== "utf-8" && l !== "utf8") throw new RangeError("TextDecoder: only utf-8 is supported, not " + label);
                this.fatal = !!(options && options.fatal);
            }
            get encoding() { return "utf-8"; }
            decode(bytes) { return bytes === undefined ? "" : dec(bytes, this.fatal); }
        };
    }
    g.FormatDate = function FormatDate(date, layout, zone) {
        const ms = date === undefined ? Date.now() : (date instanceof Date ? date.getTime() : Number(date));
        return fmt(ms, layout === undefined ? "" : String(layout), zone === undefined ? "local" : String(zone));
    };
})(globalThis);
