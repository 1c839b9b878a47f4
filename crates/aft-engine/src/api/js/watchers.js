// The JavaScript half of api/watchers.rs: a JS class keeps the callbacks (so the GC owns
// them) and calls the native `start`/`stop`; the pump calls `__aftDispatchEvent(id, evt)`.
// The `EVT_*` constants are defined in Rust (api/watchers.rs).
(function (native) {
  "use strict";
  const callbacks = new Map();
  Object.defineProperty(globalThis, "__aftDispatchEvent", {
    value: function (id, evt) { const cb = callbacks.get(id); if (cb) cb(evt); },
  });
  function globs(v, what) {
    if (v === undefined || v === null) return [];
    if (typeof v === "string") return [v];
    if (!Array.isArray(v)) throw new TypeError(what + " must be an array of glob patterns");
    return v.map(String);
  }
  // What FsWatcher and RemoteWatcher share: folders, filters, quiet period, Start/Stop.
  class Watcher {
    constructor(kind) {
      this.InclusionFilter = [];
      this.ExclusionFilter = [];
      this.DelayBySeconds = 0;
      Object.defineProperty(this, "_kind", { value: kind });
      Object.defineProperty(this, "_dirs", { value: [], writable: true });
      Object.defineProperty(this, "_id", { value: 0, writable: true });
    }
    WatchDir(path, recursive) {
      if (path === undefined || path === null || String(path) === "") throw new TypeError(this._kind + ".WatchDir needs a folder path");
      this._dirs.push({ path: String(path), recursive: !!recursive });
    }
    Start(callback) {
      if (typeof callback !== "function") return;
      if (this._id) throw new Error(this._kind + ".Start: this watcher is already running; call Stop() first");
      const id = this._start({
        dirs: this._dirs,
        include: globs(this.InclusionFilter, this._kind + ".InclusionFilter"),
        exclude: globs(this.ExclusionFilter, this._kind + ".ExclusionFilter"),
        delay: Number(this.DelayBySeconds) || 0,
      });
      callbacks.set(id, this._wrap(callback));
      this._id = id;
    }
    Stop() {
      if (!this._id) return;
      const id = this._id;
      this._id = 0;
      callbacks.delete(id);
      native.stop(id);
    }
  }
  class FsWatcher extends Watcher {
    constructor() {
      super("FsWatcher");
      this.RescanSeconds = 60;
    }
    _start(settings) {
      settings.rescan = Number(this.RescanSeconds) || 0;
      return native.start(JSON.stringify(settings));
    }
    _wrap(callback) { return callback; }
  }
  class RemoteWatcher extends Watcher {
    constructor(vfsName) {
      super("RemoteWatcher");
      if (vfsName === undefined || vfsName === null || String(vfsName) === "") throw new TypeError("new RemoteWatcher(name) needs the name of a VFS Library entry");
      Object.defineProperty(this, "_vfs", { value: String(vfsName) });
      this.PollSeconds = 10;
    }
    _start(settings) {
      settings.vfs = this._vfs;
      settings.poll = Number(this.PollSeconds) || 0;
      return native.startRemote(JSON.stringify(settings));
    }
    // The watcher's memory is saved only once the callback returned: a crash re-fires.
    _wrap(callback) {
      return function (evt) {
        const ack = evt.__ack;
        delete evt.__ack;
        callback(evt);
        native.ack(JSON.stringify(ack));
      };
    }
  }
  globalThis.FsWatcher = FsWatcher;
  globalThis.RemoteWatcher = RemoteWatcher;
})
