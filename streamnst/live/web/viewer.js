// streamnst viewer: receives the stylised stream over WebRTC and sends control changes
// over a data channel (falling back to the JSON API). ?bare=1 shows the video only
// (OBS Browser Source); ?token=... is needed when the server is not on localhost.
"use strict";
const params = new URLSearchParams(location.search);
const token = params.get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
const $ = (id) => document.getElementById(id);
const video = $("video");
const view = { frames: 0, connected: false, state: null, error: null, sending: false };
window.streamnst = view;
if (params.get("bare") === "1") document.body.classList.add("bare");

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
  if (isError) view.error = text;
}

function countFrames() {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  const tick = () => { view.frames += 1; video.requestVideoFrameCallback(tick); };
  video.requestVideoFrameCallback(tick);
}

function showState(state) {
  if (!state || state.error) {
    if (state && state.error) setStatus(state.error, true);
    return;
  }
  view.state = state;
  const fill = (select, items, value) => {
    if ([...select.options].map((o) => o.value).join("\n") !== items.join("\n")) {
      select.replaceChildren(...items.map((n) => new Option(n, n)));
    }
    if (value !== undefined && document.activeElement !== select) select.value = value;
  };
  fill($("style"), state.styles, state.style);
  fill($("blend"), state.blend_modes, state.blend);
  // styles of one bank mix: the slider shows only where the current style has partners
  const mixable = state.mixable || [];
  $("mix-row").hidden = mixable.length === 0;
  fill($("mix-style"), mixable, state.mix_style || mixable[0]);
  if (document.activeElement !== $("mix")) $("mix").value = state.mix;
  $("mix-value").textContent = Math.round(Number(state.mix) * 100) + "%";
  if (document.activeElement !== $("strength")) $("strength").value = state.strength;
  if (document.activeElement !== $("scale")) $("scale").value = state.scale;
  $("strength-value").textContent = Number(state.strength).toFixed(2);
  $("scale-value").textContent = Number(state.scale).toFixed(2);
  $("auto-scale").checked = Boolean(state.auto_scale);
  $("keep-colors").checked = Boolean(state.keep_colors);
  if (document.activeElement !== $("keep-face")) $("keep-face").value = state.keep_face;
  $("keep-face-value").textContent = Math.round(Number(state.keep_face) * 100) + "%";
  const loading = state.switching ? ` (loading ${state.switching}…)` : "";
  // a server fed by a browser's camera offers the button until this page sends
  $("camera").hidden = !state.takes_camera || view.sending;
  const lag = state.latency_ms ? ` · ${Math.round(state.latency_ms)} ms in the filter` : "";
  const cpu = state.cpu_ms_per_frame
    ? ` · CPU ${Math.round(state.cpu_ms_per_frame)} ms a frame (${state.cores} cores)` : "";
  showLearning(state.learning);
  $("info").textContent = `${state.fps} fps${lag}${cpu} · ${state.viewers}/${state.max_viewers}`
    + " viewers" + loading + (state.switch_error ? ` · ${state.switch_error}` : "");
}

// a painting learnt live: a bar while it learns, a line when it is done or failed
function showLearning(learning) {
  const bar = $("learn-bar");
  bar.hidden = !learning || learning.state !== "learning";
  if (!learning) return;
  bar.value = learning.fraction;
  const start = learning.nearest ? `, from ${learning.nearest}` : "";
  const line = {
    starting: `learning ${learning.painting}: finding the nearest style…`,
    learning: `learning ${learning.painting}${start}: ${Math.round(learning.fraction * 100)}%`,
    done: `${learning.style} is ready: it is in the style list`,
    failed: `learning ${learning.painting} failed: ${learning.error}`,
    cancelled: `learning ${learning.painting} was cancelled`,
  }[learning.state];
  $("learn-info").textContent = line || "";
}

async function sendPainting(file) {
  if (!file) return;
  $("learn-info").textContent = `sending ${file.name}…`;
  let reply;
  try {
    // a header is Latin-1: the name goes percent-encoded (日本の絵.jpg, 🎨.png)
    const r = await fetch("api/paintings" + q, { method: "POST", body: file,
      headers: { "Content-Type": "application/octet-stream",
                 "X-Painting-Name": encodeURIComponent(file.name) } });
    reply = await r.json().catch(() => ({ error: `the server answered HTTP ${r.status}` }));
  } catch (e) {
    reply = { error: `sending failed: ${e.message}` };
  }
  if (reply.error) $("learn-info").textContent = reply.error;
  else showState(reply);
}

let channel = null;
async function control(change) {
  if (channel && channel.readyState === "open") {
    channel.send(JSON.stringify(change));
    return;
  }
  const r = await fetch("api/control" + q, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(change) });
  showState(await r.json());
}

function gatheringDone(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

async function connect(camera) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  if (camera) {  // send the camera, watch the painted stream on the same connection
    pc.addTransceiver(camera.getVideoTracks()[0], { direction: "sendrecv" });
  } else {
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  channel = pc.createDataChannel("control");
  channel.onmessage = (e) => showState(JSON.parse(e.data));
  pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); };
  pc.onconnectionstatechange = () => {
    view.connected = pc.connectionState === "connected";
    if (view.connected) setStatus(camera ? "live · painting your camera" : "live");
    if (pc.connectionState === "failed") setStatus("connection failed", true);
  };
  window.streamnstPeer = pc;
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringDone(pc);
  const r = await fetch("offer" + q, { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type,
                           send: Boolean(camera) }) });
  const answer = await r.json();
  if (!r.ok) { setStatus(answer.error || "refused", true); pc.close(); return null; }
  await pc.setRemoteDescription(answer);
  return pc;
}

// The camera is only asked for after the user's click.
$("camera").onclick = async () => {
  let camera;
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 } });
  } catch (err) { setStatus("no camera: " + err.message, true); return; }
  const old = window.streamnstPeer;
  const pc = await connect(camera);
  if (!pc) { camera.getTracks().forEach((t) => t.stop()); return; }
  if (old && old !== pc) old.close();
  view.sending = true;
  $("camera").hidden = true;
  setStatus("sending your camera");
};

$("style").onchange = (e) => control({ style: e.target.value });
$("blend").onchange = (e) => control({ blend: e.target.value });
$("mix-style").onchange = (e) => control({ mix_style: e.target.value });
$("mix").onchange = (e) => control({ mix: Number(e.target.value), mix_style: $("mix-style").value });
$("strength").onchange = (e) => control({ strength: Number(e.target.value) });
$("scale").onchange = (e) => control({ scale: Number(e.target.value) });
$("auto-scale").onchange = (e) => control({ scale: e.target.checked ? "auto" : Number($("scale").value) });
$("keep-colors").onchange = (e) => control({ keep_colors: e.target.checked });
$("keep-face").onchange = (e) => control({ keep_face: Number(e.target.value) });
$("painting").onchange = (e) => sendPainting(e.target.files[0]);
$("drop").ondragover = (e) => { e.preventDefault(); $("drop").classList.add("over"); };
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  sendPainting(e.dataTransfer.files[0]);
};

async function poll() {
  try {
    const r = await fetch("api/state" + q);
    showState(await r.json());
  } catch (err) { /* server gone: keep the last picture */ }
}

countFrames();
connect().catch((err) => setStatus(String(err), true));
poll();
setInterval(poll, 1000);
