// Live plot on a canvas: samples go into 10 ms min/max buckets per series (no DOM work per sample); each
// animation frame draws min/max per pixel column over the chosen window. Raw samples of the last
// RAW_CAP per series are kept for CSV export.
"use strict";
const BUCKET_MS = 10, BUCKET_CAP = 60000, RAW_CAP = 65536;
const DECODER = new TextDecoder();
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#7f7f7f", "#bcbd22"];

class Series {
  constructor(path, color) {
    this.path = path; this.color = color;
    this.bt = new Float64Array(BUCKET_CAP); this.bmin = new Float64Array(BUCKET_CAP);
    this.bmax = new Float64Array(BUCKET_CAP); this.bstart = 0; this.bcount = 0; this.lastB = -1;
    this.rt = new Float64Array(RAW_CAP); this.rv = new Float64Array(RAW_CAP); this.rstart = 0; this.rcount = 0;
    this.points = 0;
  }
  add(t, v) {
    this.points++;
    let r = (this.rstart + this.rcount) % RAW_CAP;
    this.rt[r] = t; this.rv[r] = v;
    if (this.rcount < RAW_CAP) this.rcount++; else this.rstart = (this.rstart + 1) % RAW_CAP;
    const b = Math.floor(t / BUCKET_MS);
    if (b === this.lastB && this.bcount) {
      const i = (this.bstart + this.bcount - 1) % BUCKET_CAP;
      if (v < this.bmin[i]) this.bmin[i] = v;
      if (v > this.bmax[i]) this.bmax[i] = v;
      return;
    }
    this.lastB = b;
    const i = (this.bstart + this.bcount) % BUCKET_CAP;
    this.bt[i] = b * BUCKET_MS; this.bmin[i] = v; this.bmax[i] = v;
    if (this.bcount < BUCKET_CAP) this.bcount++; else this.bstart = (this.bstart + 1) % BUCKET_CAP;
  }
  // first logical bucket index with time >= t
  firstAt(t) {
    let lo = 0, hi = this.bcount;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.bt[(this.bstart + mid) % BUCKET_CAP] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  latest() { return this.bcount ? this.bt[(this.bstart + this.bcount - 1) % BUCKET_CAP] + BUCKET_MS : 0; }
}

class LivePlot {
  constructor(canvas, legend, info) {
    this.canvas = canvas; this.legend = legend; this.info = info;
    this.series = new Map(); this.windowMs = 10000; this.paused = false; this.dirty = false;
    // sample-to-page delay of every sample, in 1 ms bins up to 10 s (the bench reads it; no allocation per sample)
    this.stats = { messages: 0, samples: 0, delays: new Uint32Array(10001) };
    window.__lbLive = this.stats;
    const frame = () => { if (this.dirty && !this.paused) this.draw(); requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
  }
  setPins(paths) {
    const next = new Map();
    paths.forEach((p, i) => next.set(p, this.series.get(p) || new Series(p, COLORS[i % COLORS.length])));
    this.series = next; this.dirty = true; this.renderLegend();
  }
  // one binary frame from the server: header JSON, then t_ms[n], v[n] (float64), slot[n] (int32)
  ingest(buffer) {
    const view = new DataView(buffer);
    const hlen = view.getUint32(0, true);
    const header = JSON.parse(DECODER.decode(new Uint8Array(buffer, 4, hlen)));
    const off = 4 + hlen + ((8 - ((4 + hlen) % 8)) % 8), n = header.n;
    const t = new Float64Array(buffer, off, n), v = new Float64Array(buffer, off + 8 * n, n);
    const slot = new Int32Array(buffer, off + 16 * n, n);
    const targets = header.paths.map(p => this.series.get(p));
    const now = Date.now(), delays = this.stats.delays;
    for (let i = 0; i < n; i++) {
      const s = targets[slot[i]];
      if (s) s.add(t[i], v[i]);
      delays[Math.min(10000, Math.max(0, Math.round(now - t[i])))]++;
    }
    this.stats.messages++; this.stats.samples += n;
    this.dirty = true;
  }
  draw() {
    this.dirty = false;
    const c = this.canvas, w = c.clientWidth || c.width, h = c.height;
    if (c.width !== w) c.width = w;
    const g = c.getContext("2d");
    g.clearRect(0, 0, w, h);
    let right = 0;
    for (const s of this.series.values()) right = Math.max(right, s.latest());
    if (!right) return;
    const left = right - this.windowMs, cols = [];
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series.values()) {
      if (!s.mins || s.mins.length !== w) { s.mins = new Float64Array(w); s.maxs = new Float64Array(w); }
      const mins = s.mins.fill(Infinity), maxs = s.maxs.fill(-Infinity);
      for (let k = s.firstAt(left); k < s.bcount; k++) {
        const i = (s.bstart + k) % BUCKET_CAP;
        const x = Math.min(w - 1, Math.floor((s.bt[i] - left) / this.windowMs * w));
        if (s.bmin[i] < mins[x]) mins[x] = s.bmin[i];
        if (s.bmax[i] > maxs[x]) maxs[x] = s.bmax[i];
        if (s.bmin[i] < lo) lo = s.bmin[i];
        if (s.bmax[i] > hi) hi = s.bmax[i];
      }
      cols.push([s, mins, maxs]);
    }
    if (lo === Infinity) return;
    if (hi === lo) { hi += 1; lo -= 1; }
    const y = v => h - 4 - (v - lo) / (hi - lo) * (h - 8);
    for (const [s, mins, maxs] of cols) {
      g.strokeStyle = s.color; g.beginPath();
      let started = false;
      for (let x = 0; x < w; x++) {
        if (mins[x] === Infinity) continue;
        if (!started) { g.moveTo(x, y(mins[x])); started = true; } else g.lineTo(x, y(mins[x]));
        if (maxs[x] !== mins[x]) g.lineTo(x, y(maxs[x]));
      }
      g.stroke();
    }
    g.fillStyle = "#5c6670";
    g.fillText(hi.toPrecision(4), 4, 12); g.fillText(lo.toPrecision(4), 4, h - 6);
    this.info.textContent = `${this.stats.samples} samples in ${this.stats.messages} frames`;
  }
  renderLegend() {
    this.legend.replaceChildren(...[...this.series.values()].map(s => {
      const span = document.createElement("span"), i = document.createElement("i");
      i.style.background = s.color; span.append(i, s.path); span.dataset.points = "0"; return span;
    }));
  }
  points(path) { const s = this.series.get(path); return s ? s.points : 0; }
  csv() {
    let right = 0;
    for (const s of this.series.values()) right = Math.max(right, s.latest());
    const left = right - this.windowMs, lines = ["time,path,value"];
    for (const s of this.series.values()) {
      for (let k = 0; k < s.rcount; k++) {
        const i = (s.rstart + k) % RAW_CAP;
        if (s.rt[i] >= left) lines.push(`${new Date(s.rt[i]).toISOString()},${s.path},${s.rv[i]}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}
window.LivePlot = LivePlot;
