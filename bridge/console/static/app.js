// The console page: session and login, a hash router, and the pages. Everything goes through /api and /ws.
"use strict";
const $ = sel => document.querySelector(sel);
const state = { csrf: "", ws: null, devices: new Map(), values: new Map(), pins: [], plot: null, page: "" };

function status(text, error) { const s = $("#status"); s.textContent = text || ""; s.className = error ? "error" : ""; }
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
function row(cells) { const tr = document.createElement("tr"); tr.append(...cells); return tr; }

async function api(method, path, body) {
  const init = { method, headers: { "X-CSRF-Token": state.csrf }, credentials: "same-origin" };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { const e = new Error(data.message || response.statusText); e.data = data; e.status = response.status; throw e; }
  return data;
}

function describe(e) { const d = e.data || {}; return `${d.error || "Error"}${d.code ? " (" + d.code + ")" : ""}: ${e.message}`; }

// -- session -----------------------------------------------------------------------------------------
async function boot() {
  const s = await api("GET", "/api/session");
  state.csrf = s.csrf;
  if (s.logged_in) return start(s);
  show("login");
}

async function login(event) {
  event.preventDefault();
  try { const s = await api("POST", "/api/login", { token: $("#login-token").value }); state.csrf = s.csrf; $("#login-token").value = ""; start(s); }
  catch (e) { status("login refused: " + describe(e), true); }
}

async function logout() {
  const s = await api("POST", "/api/logout"); state.csrf = s.csrf;
  if (state.ws) state.ws.close();
  $("#nav").hidden = true; $("#logout").hidden = true; $("#who").textContent = ""; document.body.dataset.role = ""; show("login");
}

function start(s) {
  $("#nav").hidden = false; $("#logout").hidden = false; $("#who").textContent = `signed in (${s.identity}${s.role ? ", " + s.role.toLowerCase() : ""})`;
  // offer what the role allows (the bridge checks every call anyway): viewers get no command or alarm
  // actions, only admins an Approve button
  document.body.dataset.role = s.role || "";
  status("");
  connect();
  if (!location.hash || location.hash === "#login") location.hash = "#devices"; else route();
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { if (state.pins.length) send({ pin: state.pins }); if (state.page === "signals") send({ watch: $("#signal-glob").value }); if (state.page === "alarms") send({ alarms: true }); };
  ws.onmessage = m => (typeof m.data === "string" ? onText(JSON.parse(m.data)) : state.plot.ingest(m.data));
  ws.onclose = () => { if (state.ws === ws && !$("#nav").hidden) setTimeout(connect, 1000); };
  state.ws = ws;
}
// a command's events come over the WebSocket: wait (up to 5 s) for it to be open before sending one
function wsReady() {
  return new Promise(resolve => {
    const t0 = Date.now(), check = () => (state.ws && state.ws.readyState === 1) || Date.now() - t0 > 5000 ? resolve() : setTimeout(check, 20);
    check();
  });
}
function send(message) { if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify(message)); }

function onText(m) {
  if (m.t === "device") { if (m.type === "REMOVED") state.devices.delete(m.device.id); else state.devices.set(m.device.id, m.device); if (state.page === "devices") renderDevices(); if (state.page === "commands") fillDevices(); }
  else if (m.t === "values") { for (const r of m.rows) state.values.set(r.path, r); renderValues(); }
  else if (m.t === "command") addEvent(m.event);
  else if (m.t === "alarms") { if (state.page === "alarms") refreshAlarms(); }
  else if (m.t === "command_error" || m.t === "error") status(`${m.what || m.id}: ${m.error}: ${m.message}`, true);
}

// -- router ------------------------------------------------------------------------------------------
const PAGES = { devices: showDevices, signals: showSignals, commands: showCommands, uplink: showUplink, alarms: showAlarms, transport: showTransport };
function show(name) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "page-" + name;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === "#" + name);
  state.page = name;
}
function route() {
  const name = location.hash.slice(1);
  if ($("#nav").hidden || !PAGES[name]) return;
  show(name); PAGES[name]();
}

// -- devices -----------------------------------------------------------------------------------------
async function showDevices() {
  try { for (const d of (await api("GET", "/api/devices")).devices) state.devices.set(d.id, d); renderDevices(); }
  catch (e) { status(describe(e), true); }
}
function renderDevices() {
  const body = $("#devices-table tbody");
  body.replaceChildren(...[...state.devices.values()].sort((a, b) => a.id.localeCompare(b.id)).map(d => {
    const tr = row([cell(d.id), cell(d.state, "state-" + d.state), cell(d.driver), cell(d.endpoint),
      cell(`${d.vendor} ${d.model}`.trim()), cell(String(d.signals.length), "num"),
      cell([...d.commands, ...d.methods.map(m => m.name + "()")].join(", ")), cell(d.approval),
      cell(d.state === "ONLINE" ? "" : d.state_reason || d.state), cell("")]);
    tr.dataset.device = d.id; tr.dataset.state = d.state;
    if (d.state === "DISCOVERED") {
      const b = document.createElement("button"); b.textContent = "Approve"; b.className = "needs-admin";
      b.onclick = async () => { try { await api("POST", `/api/devices/${encodeURIComponent(d.id)}/approve`); status(`${d.id} approved`); showDevices(); } catch (e) { status(describe(e), true); } };
      tr.lastChild.append(b);
    }
    return tr;
  }));
}

// -- signals -----------------------------------------------------------------------------------------
async function showSignals() { await search(); }
async function search(event) {
  if (event) event.preventDefault();
  const glob = $("#signal-glob").value || "*";
  try {
    const found = await api("GET", "/api/signals?q=" + encodeURIComponent(glob));
    $("#signal-count").textContent = `${found.signals.length} signal(s)${found.limited ? " (first ones only)" : ""}`;
    $("#signals-table tbody").replaceChildren(...found.signals.map(s => {
      const pin = document.createElement("input"); pin.type = "checkbox"; pin.checked = state.pins.includes(s.path);
      pin.disabled = s.type === "STRING"; pin.onchange = () => togglePin(s.path, pin.checked);
      const tr = row([cell(""), cell(s.path), cell("", "num value"), cell(s.unit), cell("", "quality"), cell("", "num age")]);
      tr.firstChild.append(pin); tr.dataset.path = s.path; return tr;
    }));
    send({ watch: glob });
    renderValues();
  } catch (e) { status(describe(e), true); }
}
function renderValues() {
  if (state.page !== "signals") return;
  const now = Date.now();
  for (const tr of document.querySelectorAll("#signals-table tbody tr")) {
    const v = state.values.get(tr.dataset.path);
    if (!v) continue;
    tr.querySelector(".value").textContent = typeof v.value === "number" ? +v.value.toPrecision(6) : String(v.value);
    tr.querySelector(".quality").textContent = v.quality;
    tr.querySelector(".age").textContent = ((now - v.ts_ms) / 1000).toFixed(1) + " s";
  }
}
function togglePin(path, on) {
  state.pins = on ? [...new Set([...state.pins, path])] : state.pins.filter(p => p !== path);
  state.plot.setPins(state.pins); send({ pin: state.pins });
}
function exportCsv() {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([state.plot.csv()], { type: "text/csv" }));
  a.download = "linebridge-plot.csv"; document.body.append(a); a.click(); a.remove();
}

// -- commands ----------------------------------------------------------------------------------------
async function showCommands() {
  try { for (const d of (await api("GET", "/api/devices")).devices) state.devices.set(d.id, d); } catch (e) { status(describe(e), true); }
  fillDevices(); fields(); history();
}
function fillDevices() {
  const select = $("#cmd-device"), chosen = select.value;
  select.replaceChildren(...[...state.devices.keys()].sort().map(id => new Option(id, id)));
  if (chosen) select.value = chosen;
}
function input(id, placeholder) { const i = document.createElement("input"); i.id = id; i.placeholder = placeholder; return i; }
function fields() {
  const d = state.devices.get($("#cmd-device").value), action = $("#cmd-action").value, box = $("#cmd-fields");
  box.replaceChildren();
  if (!d) return;
  if (action === "write") {
    const s = document.createElement("select"); s.id = "cmd-signal";
    s.append(...d.signals.filter(x => x.writable).map(x => new Option(`${x.path} (${x.type.toLowerCase()}${x.unit ? ", " + x.unit : ""})`, x.path)));
    const now = document.createElement("span"); now.id = "cmd-current";
    s.onchange = () => current(s.value);
    box.append(s, input("cmd-value", "value"), now);
    if (s.value) current(s.value);
  } else if (action === "invoke") {
    const s = document.createElement("select"); s.id = "cmd-method";
    s.append(...d.methods.map(m => new Option(`${m.name}(${m.inputs.map(a => a.name + ": " + a.type.toLowerCase()).join(", ")})`, m.name)));
    box.append(s, input("cmd-args", "arguments, comma-separated"));
  } else if (action === "move_joints") box.append(input("cmd-positions", "joint positions (rad), comma-separated"));
  else if (action === "run_program") box.append(input("cmd-program", "program"));
}
async function current(path) {
  const box = $("#cmd-current");
  try {
    const v = (await api("GET", "/api/read?device=1&path=" + encodeURIComponent(path))).values[0];
    if (box && v) { box.textContent = ` now ${v.value === null ? "-" : v.value} ${v.unit}`; box.dataset.value = String(v.value); }
  } catch (e) { if (box) box.textContent = " (" + describe(e) + ")"; }
}
function request() {
  const body = { device: $("#cmd-device").value, action: $("#cmd-action").value };
  const list = id => ($(id).value || "").split(",").map(x => x.trim()).filter(x => x !== "");
  if (body.action === "write") { body.signal = $("#cmd-signal").value; body.value = $("#cmd-value").value; }
  else if (body.action === "invoke") { body.method = $("#cmd-method").value; body.args = list("#cmd-args"); }
  else if (body.action === "move_joints") body.positions = list("#cmd-positions").map(Number);
  else if (body.action === "run_program") body.program = $("#cmd-program").value;
  return body;
}
function confirmSend(text) {
  return new Promise(resolve => {
    const dialog = $("#confirm"); $("#confirm-text").textContent = text;
    dialog.onclose = () => resolve(dialog.returnValue === "ok"); dialog.showModal();
  });
}
async function sendCommand(event) {
  event.preventDefault();
  const body = request(), result = $("#cmd-result");
  // stop is always allowed without a question; anything that can make a machine move is confirmed
  if (body.action !== "stop" && !(await confirmSend(`Send ${body.action} to ${body.device}? This may move the machine.`))) return;
  $("#cmd-events").replaceChildren();
  await wsReady();
  try {
    const r = await api("POST", "/api/commands", body);
    result.className = "ok"; result.textContent = `${r.command.id}: ${r.command.state}`;
    addEvent(r.command);
  } catch (e) {
    const d = e.data || {};
    result.className = "refused";
    result.textContent = d.gate ? `Refused by the gate [${d.gate}]: ${e.message}` : describe(e);
  }
  history();
}
function addEvent(e) {
  const li = document.createElement("li");
  li.textContent = `${e.id} ${e.state}${e.message ? " (" + e.message + ")" : ""}${e.error_reason ? " " + e.error_reason + ": " + e.error_message : ""}${e.result.length ? " -> " + e.result.join(", ") : ""}`;
  li.dataset.state = e.state; $("#cmd-events").append(li);
  if (e.final) { history(); if ($("#cmd-signal")) current($("#cmd-signal").value); }
}
async function history() {
  try {
    const r = await api("GET", "/api/commands");
    $("#history-table tbody").replaceChildren(...r.commands.map(c => {
      const tr = row([cell(c.id), cell(c.state), cell(c.message), cell(c.error_reason ? c.error_reason + ": " + c.error_message : ""), cell(c.time_ms ? new Date(c.time_ms).toLocaleTimeString() : ""), cell("")]);
      if (!c.final) {
        const b = document.createElement("button"); b.textContent = "Cancel"; b.className = "needs-operator";
        b.onclick = async () => { try { await api("POST", `/api/commands/${encodeURIComponent(c.id)}/cancel`); history(); } catch (err) { status(describe(err), true); } };
        tr.lastChild.append(b);
      }
      return tr;
    }));
  } catch (e) { status(describe(e), true); }
}

// -- uplink ------------------------------------------------------------------------------------------
const uplinkRates = [];
let uplinkTimer = 0, uplinkLast = null;
async function showUplink() {
  clearInterval(uplinkTimer);
  const tick = async () => {
    if (state.page !== "uplink") return clearInterval(uplinkTimer);
    try {
      const s = (await api("GET", "/api/uplink")).status, now = Date.now();
      const published = Number(s.published_samples || 0);
      if (uplinkLast) { uplinkRates.push((published - uplinkLast[1]) / ((now - uplinkLast[0]) / 1000)); if (uplinkRates.length > 300) uplinkRates.shift(); }
      uplinkLast = [now, published];
      const age = s.oldest_age ? parseFloat(s.oldest_age) : 0;
      const items = [["State", String(s.state).replace("UPLINK_STATE_", "")], ["Broker", s.broker], ["Edge node", `${s.group_id}/${s.edge_node_id}`],
        ["Last error", s.last_error || "-"], ["Backlog", `${s.backlog_messages} payloads, ${s.backlog_bytes} bytes, ${s.backlog_samples} samples`],
        ["Oldest backlog age", `${age.toFixed(1)} s`], ["Published", `${s.published_messages} payloads, ${s.published_samples} samples (${s.replayed_messages} replayed)`],
        ["Lost", `${s.dropped_samples} samples (disk budget), ${s.expired_samples} samples (age limit)`], ["Cloud commands", `${s.commands_accepted} accepted, ${s.commands_rejected} rejected`]];
      $("#uplink-fields").replaceChildren(...items.flatMap(([k, v]) => { const dt = document.createElement("dt"), dd = document.createElement("dd"); dt.textContent = k; dd.textContent = v; return [dt, dd]; }));
      drawRates();
    } catch (e) { status(describe(e), true); }
  };
  await tick(); uplinkTimer = setInterval(tick, 1000);
}
function drawRates() {
  const c = $("#uplink-rate"), g = c.getContext("2d"), w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  const top = Math.max(1, ...uplinkRates);
  g.strokeStyle = "#1f77b4"; g.beginPath();
  uplinkRates.forEach((r, i) => { const x = w - (uplinkRates.length - 1 - i) * (w / 300), y = h - 4 - r / top * (h - 16); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke(); g.fillStyle = "#5c6670"; g.fillText(`${top.toFixed(0)} /s`, 4, 12);
}

// -- alarms & efficiency -------------------------------------------------------------------------------
const STATE_COLORS = { EXECUTE: "#2ca02c", IDLE: "#9fb3c8", HELD: "#ff7f0e", SUSPENDED: "#e8c547", STOPPED: "#d62728", ABORTED: "#8c1c13", COMPLETE: "#17becf", SETUP: "#bcbd22", OFFLINE: "#555555" };
async function showAlarms() {
  const box = $("#alarms-body");
  const probe = await api("GET", "/api/services/alarms");
  if (!probe.available) return optional("alarms", ["alarms", "efficiency"]);
  try {
    const [a, e] = await Promise.all([api("GET", "/api/alarms"), api("GET", "/api/efficiency?window=" + ($("#oee-window") ? $("#oee-window").value : "shift"))]);
    const table = document.createElement("table"); table.id = "alarms-table";
    table.innerHTML = "<thead><tr><th>Severity</th><th>Alarm</th><th>Message</th><th>State</th><th>Raised</th><th></th></tr></thead><tbody></tbody>";
    table.tBodies[0].append(...alarmRows(a.alarms));
    const oee = document.createElement("table"); oee.id = "oee-table";
    oee.innerHTML = "<thead><tr><th>Device</th><th>OEE</th><th>Availability</th><th>Effectiveness</th><th>Quality</th><th>Time per state</th><th>Lost to alarms</th></tr></thead><tbody></tbody>";
    const pct = v => (100 * (v || 0)).toFixed(1) + " %";
    oee.tBodies[0].append(...e.devices.map(d => {
      const states = d.seconds_by_state || {}, total = Object.values(states).reduce((s, v) => s + v, 0) || 1;
      const bar = document.createElement("canvas"); bar.width = 240; bar.height = 16; const g = bar.getContext("2d"); let x0 = 0;
      for (const [k, v] of Object.entries(states)) { g.fillStyle = STATE_COLORS[k] || "#7f7f7f"; const w = v / total * 240; g.fillRect(x0, 0, w, 16); x0 += w; }
      const tr = row([cell(d.device_id), cell(pct(d.oee), "num"), cell(pct(d.availability), "num"), cell(pct(d.effectiveness), "num"), cell(pct(d.quality), "num"), cell(Object.entries(states).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(", ")), cell(Object.entries(d.down_by_alarm || {}).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(", "))]);
      tr.children[5].prepend(bar, document.createElement("br")); tr.dataset.device = d.device_id; return tr;
    }));
    const h1 = document.createElement("h2"); h1.textContent = "Active alarms";
    const h2 = document.createElement("h2"); h2.textContent = "Efficiency (ISO 22400-2)";
    const h3 = document.createElement("h2"); h3.textContent = "Machine state timeline";
    const lines = document.createElement("div"); lines.id = "state-timeline";
    box.replaceChildren(h1, table, h2, oee, h3, lines);
    send({ alarms: true });
    const tick = async () => {
      if (state.page !== "alarms") return clearInterval(timelineTimer);
      try { drawTimeline(lines, await api("GET", "/api/efficiency/timeline")); } catch (err) { status(describe(err), true); }
    };
    clearInterval(timelineTimer);
    await tick(); timelineTimer = setInterval(tick, 2000);
  } catch (err) { status(describe(err), true); }
}
// the alarm rows, with the actions an operator may take
function alarmRows(alarms) {
  return alarms.map(x => {
    const st = `${x.active ? "active" : "cleared"}, ${x.acked ? "acknowledged" : "unacknowledged"}${x.shelved ? ", shelved" : ""}`;
    const tr = row([cell(String(x.severity), "num"), cell(x.id), cell(x.message), cell(st), cell(x.raised ? new Date(x.raised).toLocaleTimeString() : ""), cell("")]);
    tr.dataset.alarm = x.id; tr.dataset.active = String(!!x.active); tr.dataset.acked = String(!!x.acked); tr.dataset.shelved = String(!!x.shelved);
    const act = (label, path, body) => { const b = document.createElement("button"); b.textContent = label; b.className = "needs-operator"; b.onclick = async () => { try { await api("POST", `/api/alarms/${encodeURIComponent(x.id)}/${path}`, body()); refreshAlarms(); } catch (err) { status(describe(err), true); } }; tr.lastChild.append(b); };
    if (!x.acked) act("Acknowledge", "ack", () => ({ comment: "" }));
    if (!x.shelved) act("Shelve 1 h", "shelve", () => ({ minutes: 60, reason: prompt("Why shelve this alarm?") || "" }));
    else act("Unshelve", "unshelve", () => ({}));
    return tr;
  });
}
// the alarm list again (after an action, and on each "alarms" notice of WatchAlarms over the WebSocket)
async function refreshAlarms() {
  const table = $("#alarms-table"); if (!table) return;
  try { table.tBodies[0].replaceChildren(...alarmRows((await api("GET", "/api/alarms")).alarms)); } catch (err) { status(describe(err), true); }
}
// one row per device: its states from the start of what the console has followed (at most 1 h) to now
let timelineTimer = null;
function drawTimeline(box, t) {
  const ids = Object.keys(t.devices), rowH = 22, left = 130, c = box.querySelector("canvas") || document.createElement("canvas");
  if (!c.isConnected) { const note = document.createElement("p"); note.className = "note"; box.replaceChildren(note, c); }
  box.querySelector(".note").textContent = t.error ? `state timeline: ${t.error}` : `since ${new Date(t.since_ms).toLocaleTimeString()} (what this console session has followed, at most the last hour)`;
  c.width = 1000; c.height = rowH * ids.length + 18;
  const g = c.getContext("2d"), span = Math.max(1, t.now_ms - t.since_ms), x = ms => left + (ms - t.since_ms) / span * (c.width - left - 10);
  g.clearRect(0, 0, c.width, c.height); g.font = "12px sans-serif";
  let changes = 0;
  ids.forEach((id, i) => {
    const seen = t.devices[id], y = i * rowH;
    g.fillStyle = "#1d232a"; g.fillText(id, 4, y + 15);
    seen.forEach(([ms, st], k) => {
      const end = k + 1 < seen.length ? seen[k + 1][0] : t.now_ms;
      g.fillStyle = STATE_COLORS[st] || "#7f7f7f"; g.fillRect(x(ms), y + 3, Math.max(1, x(end) - x(ms)), rowH - 6);
    });
    changes += seen.length;
  });
  g.fillStyle = "#5c6670"; g.fillText(new Date(t.since_ms).toLocaleTimeString(), left, c.height - 4);
  const now = new Date(t.now_ms).toLocaleTimeString(); g.fillText(now, c.width - 10 - g.measureText(now).width, c.height - 4);
  c.dataset.devices = String(ids.length); c.dataset.changes = String(changes);
}

// -- transport: a 2D map per mapId of the configured zones, the AGVs and their loads (refreshed every 1 s) --
let transportTimer = null;
async function showTransport() {
  const box = $("#transport-body");
  const probe = await api("GET", "/api/services/transport");
  if (!probe.available) return optional("transport", ["transport"]);
  const search = document.createElement("form"); search.id = "load-search";
  const q = input("load-id", "where is load ..."); const go = document.createElement("button"); go.textContent = "Find"; const out = document.createElement("span"); out.id = "load-result";
  search.append(q, go, out);
  search.onsubmit = async ev => { ev.preventDefault(); try { const l = (await api("GET", "/api/transport/loads/" + encodeURIComponent(q.value))).load; out.textContent = ` ${l.load_id}: ${l.on_board ? "on " + l.device_id : "at"} ${l.location.map_id} (${(+l.location.x).toFixed(2)}, ${(+l.location.y).toFixed(2)})${(l.location.zones || []).length ? " in " + l.location.zones.join(", ") : ""}`; } catch (err) { out.textContent = " " + describe(err); } };
  const maps = document.createElement("div"); maps.id = "transport-maps";
  box.replaceChildren(search, maps);
  let zones = [];
  try { zones = (await api("GET", "/api/transport/zones")).zones; } catch (err) { status(describe(err), true); }
  const tick = async () => {
    if (state.page !== "transport") return clearInterval(transportTimer);
    try { drawMaps(maps, zones, (await api("GET", "/api/transport/transporters")).transporters); } catch (err) { status(describe(err), true); }
  };
  clearInterval(transportTimer);
  await tick(); transportTimer = setInterval(tick, 1000);
}
// one heading and canvas per map id (kept across refreshes, so the page does not jump)
function drawMaps(box, zones, transporters) {
  const maps = new Map(), add = (id, key, item) => { if (!maps.has(id)) maps.set(id, { agvs: [], zones: [] }); maps.get(id)[key].push(item); };
  for (const z of zones) add(z.map_id, "zones", z);
  for (const t of transporters) add((t.location || {}).map_id || "(no map)", "agvs", t);
  const ids = [...maps.keys()].sort();
  if (box.dataset.maps !== ids.join("\n")) {
    box.replaceChildren(...ids.flatMap(id => {
      const h = document.createElement("h2"); const c = document.createElement("canvas"); c.width = 800; c.height = 400; c.dataset.map = id;
      return [h, c];
    }));
    box.dataset.maps = ids.join("\n");
  }
  ids.forEach((id, i) => {
    const m = maps.get(id), h = box.children[2 * i], c = box.children[2 * i + 1];
    h.textContent = `Map ${id}: ${m.agvs.length} AGV(s), ${m.zones.length} zone(s)`;
    c.dataset.agvs = String(m.agvs.length); c.dataset.zones = String(m.zones.length);
    drawMap(c, m.zones, m.agvs);
  });
}
// none of these is an AGV colour (red: errors, green: driving, blue: idle)
const ZONE_COLOURS = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
function drawMap(c, zones, list) {
  const g = c.getContext("2d"), pts = zones.flatMap(z => z.points || []);
  const xs = [...list.map(t => +(t.location || {}).x || 0), ...pts.map(p => +p.x || 0)], ys = [...list.map(t => +(t.location || {}).y || 0), ...pts.map(p => +p.y || 0)];
  const x0 = Math.min(...xs) - 2, x1 = Math.max(...xs) + 2, y0 = Math.min(...ys) - 2, y1 = Math.max(...ys) + 2;
  const s = Math.min(c.width / (x1 - x0), c.height / (y1 - y0)), px = x => (x - x0) * s, py = y => c.height - (y - y0) * s;
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = "#e3e6ea"; for (let x = Math.ceil(x0); x <= x1; x++) { g.beginPath(); g.moveTo(px(x), 0); g.lineTo(px(x), c.height); g.stroke(); }
  zones.forEach((z, i) => {
    const p = z.points || []; if (p.length < 3) return;
    const colour = ZONE_COLOURS[i % ZONE_COLOURS.length];
    g.beginPath(); g.moveTo(px(+p[0].x || 0), py(+p[0].y || 0)); for (const q of p.slice(1)) g.lineTo(px(+q.x || 0), py(+q.y || 0)); g.closePath();
    g.globalAlpha = 0.15; g.fillStyle = colour; g.fill(); g.globalAlpha = 1; g.strokeStyle = colour; g.stroke();
    g.fillStyle = colour; g.fillText(z.name, px(Math.min(...p.map(q => +q.x || 0))) + 4, py(Math.max(...p.map(q => +q.y || 0))) + 12);
  });
  list.forEach(t => {
    const l = t.location || {}, x = px(+l.x || 0), y = py(+l.y || 0), th = +l.theta || 0;
    g.save(); g.translate(x, y); g.rotate(-th); g.fillStyle = t.errors ? "#d62728" : t.driving ? "#2ca02c" : "#1f77b4";
    g.beginPath(); g.moveTo(12, 0); g.lineTo(-8, 7); g.lineTo(-8, -7); g.closePath(); g.fill(); g.restore();
    g.fillStyle = "#1d232a"; g.fillText(`${t.device_id}${(t.load_ids || []).length ? " [" + t.load_ids.join(", ") + "]" : ""}`, x + 10, y - 10);
  });
}

// -- pages of services a bridge may not have -----------------------------------------------------------
async function optional(page, services) {
  const box = $(`#${page}-body`);
  try {
    const found = await Promise.all(services.map(name => api("GET", `/api/services/${name}`).then(r => [name, r])));
    box.replaceChildren(...found.map(([name, r]) => {
      const p = document.createElement("p"); p.className = "unavailable";
      p.textContent = r.available ? `This bridge offers the ${name} service; its page is not built into this console version yet.` : `${name}: not available on this bridge (${r.reason})`;
      return p;
    }));
  } catch (e) { status(describe(e), true); }
}

// -- wiring ------------------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", () => {
  state.plot = new LivePlot($("#plot"), $("#plot-legend"), $("#plot-info"));
  $("#login-form").onsubmit = login; $("#logout").onclick = logout;
  $("#signal-search").onsubmit = search;
  $("#plot-window").onchange = e => { state.plot.windowMs = Number(e.target.value); state.plot.dirty = true; };
  $("#plot-pause").onclick = e => { state.plot.paused = !state.plot.paused; e.target.textContent = state.plot.paused ? "Resume" : "Pause"; state.plot.dirty = true; };
  $("#plot-csv").onclick = exportCsv;
  $("#plot-clear").onclick = () => { state.pins = []; state.plot.setPins([]); send({ pin: [] }); search(); };
  $("#cmd-device").onchange = fields; $("#cmd-action").onchange = fields;
  $("#command-form").onsubmit = sendCommand; $("#cmd-refresh").onclick = history;
  window.addEventListener("hashchange", route);
  setInterval(renderValues, 500);
  boot().catch(e => status(describe(e), true));
});
