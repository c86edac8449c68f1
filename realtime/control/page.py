"""The panel's two pages, self-contained (no script or font from elsewhere: the panel works on a
machine without internet). The panel: preview, live numbers with a chart, the face to wear
(upload, gallery, the face in the frame), who wears what, the privacy switch and the live options
(a widget with ``data-live="SECTION"`` and the option's name as its id: nothing else to add). The
kiosk: the preview full screen, big gallery tiles and one "use my face" button, for a touch screen."""

from __future__ import annotations

_COMMON_JS = """
async function call(path, body, raw) {
  const options = {method: 'POST', headers: raw ? {} : {'Content-Type': 'application/json'}, body: raw ? body : JSON.stringify(body || {})};
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({error: 'no answer', fix: 'is the run still going?'}));
  const message = document.getElementById('message');
  if (!response.ok) { message.textContent = data.error + ': ' + data.fix; message.className = 'error'; }
  else if (data.source) { message.textContent = 'wearing ' + data.source + ' (computed in ' + data.computed_ms + ' ms)'; message.className = 'ok'; }
  return data;
}
function galleryTiles(names, element) {
  element.replaceChildren(...names.map(name => {
    const tile = document.createElement('button');
    tile.className = 'tile';
    tile.dataset.name = name;
    const image = document.createElement('img');
    image.src = '/api/gallery/' + encodeURIComponent(name);
    image.alt = name;
    tile.append(image, document.createTextNode(name));
    tile.onclick = () => call('/api/source/gallery', {name});
    return tile;
  }));
}
"""

PANEL_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>realtime — control panel</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
header { padding: 8px 16px; background: #222; display: flex; gap: 24px; align-items: baseline; }
header b { font-size: 20px; }
main { display: grid; grid-template-columns: minmax(320px, 2fr) minmax(280px, 1fr); gap: 16px; padding: 16px; }
section { background: #1b1b1b; border-radius: 8px; padding: 12px; margin-bottom: 12px; }
h2 { font-size: 14px; margin: 0 0 8px; color: #9cf; }
#preview { width: 100%; background: #000; border-radius: 6px; }
.tile { background: #2a2a2a; color: #eee; border: 1px solid #444; border-radius: 6px; padding: 4px; margin: 4px; cursor: pointer; width: 96px; }
.tile img { width: 86px; height: 86px; object-fit: cover; display: block; }
.track { display: flex; gap: 8px; align-items: center; margin: 4px 0; }
.track img { width: 56px; height: 56px; border-radius: 4px; }
.error { color: #f77; } .ok { color: #7f7; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: right; }
label { display: block; margin: 4px 0; }
canvas { width: 100%; height: 90px; background: #000; }
</style></head>
<body>
<header><b>realtime</b><span id="fps">– fps</span><span id="latency">latency –</span><span id="drops">dropped –</span><span id="failed">failed –</span><span id="generator"></span></header>
<main>
<div>
  <section><div style="display:flex;gap:8px"><img id="input" alt="input" style="display:none;width:50%;border-radius:6px"><img id="preview" src="/api/preview.mjpg" alt="output preview"></div>
    <label><input id="show-input" type="checkbox"> show the input beside the output</label></section>
  <section><h2>Live numbers (last 60 s: fps, white; p99 latency ms, orange)</h2><canvas id="chart" width="600" height="90"></canvas>
    <table id="stages"><thead><tr><th style="text-align:left">stage</th><th>p50 ms</th><th>p99 ms</th></tr></thead><tbody></tbody></table></section>
</div>
<div>
  <section><h2>Face to wear</h2>
    <p>Now: <b id="source">–</b></p>
    <label>Upload a photo <input id="upload" type="file" accept="image/jpeg,image/png,image/bmp"></label>
    <button id="from-frame">Use the face in the frame</button>
    <div id="gallery"></div>
    <p id="message"></p></section>
  <section><h2>People in the frame</h2><div id="tracks"></div>
    <p style="color:#999">"none": that person is shown as they are, whatever the face-safety setting.</p></section>
  <section><h2>Generator</h2><select id="generators"></select></section>
  <section><h2>Record</h2><button id="record">Start recording</button> <span id="recording"></span></section>
  <section><h2>Swap</h2>
    <label><input type="radio" name="mode" value="swap" checked> swap faces</label>
    <label><input type="radio" name="mode" value="original"> show faces as they are</label>
    <label><input type="radio" name="mode" value="blur"> blur faces (privacy)</label>
    <label>steady <input id="steady" data-live="swap" type="range" min="0" max="0.9" step="0.05"></label></section>
  <section><h2>Blend</h2>
    <label>erode <input id="erode" data-live="blend" type="range" min="0" max="0.3" step="0.01"></label>
    <label>blur <input id="blur" data-live="blend" type="range" min="0" max="0.5" step="0.01"></label>
    <label>opacity <input id="opacity" data-live="blend" type="range" min="0" max="1" step="0.05"></label>
    <label>detail <input id="detail" data-live="blend" type="range" min="0" max="1" step="0.05"></label>
    <label>colour <select id="colour" data-live="blend"><option>off</option><option>per_frame</option><option>smoothed</option></select></label>
    <label><input id="keep_mouth" data-live="blend" type="checkbox"> keep the original mouth</label>
    <label><input id="keep_eyes" data-live="blend" type="checkbox"> keep the original eyes</label></section>
</div>
</main>
<script>
""" + _COMMON_JS + """
const history = [];
const live = document.querySelectorAll('[data-live]');  // a widget per live option: id = the option, data-live = its section
let known = '';
function draw() {
  const canvas = document.getElementById('chart'), g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(60, ...history.map(h => Math.max(h.fps, h.p99 || 0)));
  for (const [key, colour] of [['fps', '#fff'], ['p99', '#f90']]) {
    g.strokeStyle = colour; g.beginPath();
    history.forEach((h, i) => { const x = i * canvas.width / 59, y = canvas.height - (h[key] || 0) / top * canvas.height; i ? g.lineTo(x, y) : g.moveTo(x, y); });
    g.stroke();
  }
}
function show(data) {
  document.getElementById('fps').textContent = data.fps + ' fps';
  document.getElementById('latency').textContent = data.latency_ms.p50 !== undefined ? 'latency p50 ' + data.latency_ms.p50 + ' ms, p99 ' + data.latency_ms.p99 + ' ms' : 'latency –';
  document.getElementById('drops').textContent = 'dropped ' + data.dropped;
  document.getElementById('failed').textContent = 'failed ' + data.failed;
  history.push({fps: data.fps, p99: data.latency_ms.p99}); if (history.length > 60) history.shift(); draw();
  document.querySelector('#stages tbody').replaceChildren(...Object.entries(data.stages_ms).map(([name, s]) => {
    const row = document.createElement('tr'); row.innerHTML = '<td style="text-align:left"></td><td></td><td></td>';
    row.children[0].textContent = name; row.children[1].textContent = s.p50; row.children[2].textContent = s.p99; return row; }));
  const state = data.state;
  document.getElementById('source').textContent = state.source;
  document.getElementById('generator').textContent = state.generator || '';
  document.getElementById('record').textContent = state.recording ? 'Stop recording' : 'Start recording';
  document.getElementById('recording').textContent = state.recording ? 'recording to ' + state.recording : '';
  document.querySelector('input[name=mode][value=' + state.mode + ']').checked = true;
  const select = document.getElementById('generators');
  if (select.options.length !== state.generators.length) select.replaceChildren(...state.generators.map((name, i) => { const o = document.createElement('option'); o.value = i; o.textContent = name; return o; }));
  if (document.activeElement !== select) select.value = state.active_generator;
  const key = JSON.stringify([state.gallery, state.sources, state.tracks]);
  if (key !== known) {
    known = key;
    galleryTiles(state.gallery, document.getElementById('gallery'));
    document.getElementById('tracks').replaceChildren(...state.tracks.map(t => {
      const row = document.createElement('div'); row.className = 'track';
      const face = document.createElement('img'); face.src = '/api/faces/' + t.id + '.jpg?' + Date.now();
      const select = document.createElement('select'); select.dataset.track = t.id;
      for (const option of ['default', 'none', ...state.sources]) { const o = document.createElement('option'); o.textContent = option; o.selected = option === t.wears; select.append(o); }
      select.onchange = () => call('/api/mapping', {track: t.id, wear: select.value});
      const use = document.createElement('button'); use.textContent = 'wear this face'; use.onclick = () => call('/api/source/frame', {face: t.id});
      row.append(face, document.createTextNode('person ' + t.id + ' wears '), select, use); return row; }));
  }
  for (const widget of live) {  // a live option: its value under its section's name, unless being changed
    const values = state[widget.dataset.live];
    if (!values || !(widget.id in values) || document.activeElement === widget) continue;
    if (widget.type === 'checkbox') widget.checked = values[widget.id]; else widget.value = values[widget.id];
  }
}
new EventSource('/api/events').onmessage = event => show(JSON.parse(event.data));
document.getElementById('upload').onchange = event => { const file = event.target.files[0]; if (file) call('/api/source/upload?name=' + encodeURIComponent(file.name), file, true); };
document.getElementById('from-frame').onclick = () => call('/api/source/frame', {});
document.getElementById('show-input').onchange = e => {
  const input = document.getElementById('input'), preview = document.getElementById('preview');
  input.style.display = e.target.checked ? 'block' : 'none';
  input.src = e.target.checked ? '/api/input.mjpg?' + Date.now() : '';
  preview.style.width = e.target.checked ? '50%' : '100%';
};
document.getElementById('generators').onchange = e => call('/api/generator', {index: Number(e.target.value)});
document.getElementById('record').onclick = async () => {
  const stop = document.getElementById('record').textContent.startsWith('Stop');
  const data = await call('/api/record', {action: stop ? 'stop' : 'start'});
  if (data.file) { const message = document.getElementById('message'); message.textContent = 'recorded ' + data.frames + ' frames to ' + data.file; message.className = 'ok'; }
};
document.querySelectorAll('input[name=mode]').forEach(radio => radio.onchange = () => call('/api/mode', {mode: radio.value}));
for (const widget of live) widget.onchange = () => call('/api/' + widget.dataset.live, {[widget.id]: widget.type === 'checkbox' ? widget.checked : ['range', 'number'].includes(widget.type) ? Number(widget.value) : widget.value});
</script></body></html>
"""

KIOSK_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>realtime — kiosk</title>
<style>
body { margin: 0; background: #000; color: #fff; font: 22px system-ui, sans-serif; overflow: hidden; }
#preview { position: fixed; inset: 0; width: 100vw; height: 100vh; object-fit: contain; }
#bar { position: fixed; left: 0; right: 0; bottom: 0; display: flex; gap: 12px; padding: 12px; background: rgba(0,0,0,.6); overflow-x: auto; align-items: center; }
.tile { background: #222; color: #fff; border: 2px solid #555; border-radius: 12px; padding: 6px; font-size: 16px; min-width: 140px; }
.tile img { width: 128px; height: 128px; object-fit: cover; display: block; border-radius: 8px; }
#me { font-size: 28px; padding: 24px 32px; border-radius: 16px; border: 0; background: #2a7; color: #fff; min-width: 220px; }
#message { position: fixed; top: 16px; left: 16px; background: rgba(0,0,0,.6); padding: 8px 12px; border-radius: 8px; }
.error { color: #f77; } .ok { color: #7f7; }
</style></head>
<body>
<img id="preview" src="/api/preview.mjpg" alt="preview">
<p id="message"></p>
<div id="bar"><button id="me">Use my face</button><div id="gallery" style="display:flex"></div></div>
<script>
""" + _COMMON_JS + """
document.getElementById('me').onclick = () => call('/api/source/frame', {});
fetch('/api/state').then(r => r.json()).then(state => galleryTiles(state.gallery, document.getElementById('gallery')));
</script></body></html>
"""
