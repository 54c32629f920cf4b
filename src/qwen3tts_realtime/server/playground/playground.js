// The playground: the server's public routes only (/v1/stats, /v1/voices, the /v1/stream websocket).
// Audio chunks are played as they arrive through the Web Audio API with a small playout buffer; Stop cancels the
// stream and drops what was buffered. window.__playground exposes counters for tests.
"use strict";

const PLAYOUT_S = 0.1;  // audio is scheduled this far ahead of "now" when playback (re)starts
const $ = (id) => document.getElementById(id);
const hook = (window.__playground = {
  samplesScheduled: 0, samplesAfterStop: 0, stopPressed: false, utterances: 0, lastError: null,
  firstAudioMs: null, xrt: null, underruns: 0, stopMs: null, done: null,
});

let audio = null;      // AudioContext, made on the first user action
let current = null;    // the utterance in progress

function headers() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function show(id, text, isError = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", isError);
  if (isError) hook.lastError = text;
}

async function loadModel() {
  try {
    const stats = await api("/v1/stats");
    const model = stats.model;
    $("model").textContent = `${model.id} (${model.type}, ${model.size})`;
    $("language").replaceChildren(...["Auto", ...model.languages.filter((l) => l !== "Auto")].map(option));
    const base = model.type === "base";
    $("clone-hint").textContent = base
      ? "Upload a clip (1–60 s of one speaker) or record one, with its transcript."
      : "Cloning needs a Base checkpoint; this server runs " + model.type + ".";
    for (const id of ["clone", "clone-file", "record", "clone-name", "clone-text"]) $(id).disabled = !base;
    await loadVoices();
    show("status", "");
  } catch (e) {
    show("status", e.message, true);
  }
}

function option(value) {
  const o = document.createElement("option");
  o.value = o.textContent = value;
  return o;
}

async function loadVoices(select) {
  const { voices } = await api("/v1/voices");
  const usable = voices.filter((v) => v.usable).map((v) => v.name);
  $("voice").replaceChildren(...usable.map(option));
  if (select) $("voice").value = select;
  $("speak").disabled = usable.length === 0;
  if (!usable.length) show("status", "No voice yet: clone one below.");
}

function decode(data, encoding) {
  if (encoding === "float32") return new Float32Array(data);
  if (encoding === "pcm16") {
    const ints = new Int16Array(data), out = new Float32Array(ints.length);
    for (let i = 0; i < ints.length; i++) out[i] = ints[i] / 32768;
    return out;
  }
  const bytes = new Uint8Array(data), out = new Float32Array(bytes.length);  // G.711 μ-law
  for (let i = 0; i < bytes.length; i++) {
    const u = ~bytes[i] & 0xff, exponent = (u >> 4) & 7, mantissa = u & 15;
    const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    out[i] = ((u & 0x80) ? -magnitude : magnitude) / 32768;
  }
  return out;
}

function startUtterance(withText) {
  if (!audio) audio = new AudioContext();
  audio.resume();
  stopUtterance(false);
  const [rate, encoding] = $("format").value.split("/");
  const protocols = ["qwen3tts"];
  const key = $("api-key").value.trim();
  if (key) protocols.push(`bearer.${key}`);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`, protocols);
  ws.binaryType = "arraybuffer";
  const u = (current = {
    ws, rate: Number(rate), encoding, sources: [], nextTime: 0, started: performance.now(), firstAudio: null,
    audioStart: null, samples: 0, stopped: false, sent: 0, wordSpans: [], timers: [], open: false, pending: [],
  });
  hook.utterances += 1;
  hook.firstAudioMs = hook.xrt = hook.stopMs = hook.done = null;
  hook.underruns = 0;
  hook.stopPressed = false;
  hook.samplesAfterStop = 0;
  $("words").replaceChildren();
  for (const id of ["m-first", "m-xrt", "m-underruns", "m-stop"]) $(id).textContent = "–";
  $("stop").disabled = false;
  const start = {
    type: "start", voice: $("voice").value, language: $("language").value, sample_rate: u.rate, encoding,
    speed: Number($("speed").value) || 1.0, do_sample: $("sampled").checked,
  };
  if (withText !== null) start.text = withText;
  ws.onopen = () => {
    ws.send(JSON.stringify(start));
    u.open = true;
    for (const message of u.pending) ws.send(message);
    u.pending = [];
  };
  ws.onmessage = (event) => onMessage(u, event);
  ws.onerror = () => show("status", "the connection failed (is the API key right?)", true);
  ws.onclose = () => { if (current === u) $("stop").disabled = true; };
  return u;
}

function send(u, message) {
  const text = JSON.stringify(message);
  if (u.open) u.ws.send(text); else u.pending.push(text);
}

function onMessage(u, event) {
  if (typeof event.data !== "string") {
    if (u.stopped) return;  // after Stop: nothing more is played
    playChunk(u, decode(event.data, u.encoding));
    return;
  }
  const message = JSON.parse(event.data);
  if (message.type === "words") {
    for (const w of message.words) highlightLater(u, w);
  } else if (message.type === "error") {
    show("status", message.message, true);
  } else if (message.type === "done") {
    hook.done = message.status;
    if (message.status === "cancelled" && u.stopPressedAt) {
      hook.stopMs = performance.now() - u.stopPressedAt;
      $("m-stop").textContent = `${hook.stopMs.toFixed(0)} ms`;
    }
    if (message.xrt != null) {
      hook.xrt = message.xrt;
      $("m-xrt").textContent = `${message.xrt.toFixed(2)}×`;
    }
    if (message.status !== "finished" && message.status !== "cancelled") {
      show("status", message.message || `stream ${message.status}`, true);
    }
    $("stop").disabled = true;
    u.ws.close();
  }
}

function playChunk(u, samples) {
  if (!samples.length) return;
  const now = audio.currentTime;
  if (u.firstAudio === null) {
    u.firstAudio = performance.now();
    hook.firstAudioMs = u.firstAudio - u.started;
    $("m-first").textContent = `${hook.firstAudioMs.toFixed(0)} ms`;
  } else if (u.nextTime < now) {
    hook.underruns += 1;  // the previous chunk ran out before this one came
    $("m-underruns").textContent = String(hook.underruns);
  }
  const buffer = audio.createBuffer(1, samples.length, u.rate);
  buffer.copyToChannel(samples, 0);
  const source = audio.createBufferSource();
  source.buffer = buffer;
  source.connect(audio.destination);
  const at = Math.max(u.nextTime, now + PLAYOUT_S);
  if (u.audioStart === null) u.audioStart = at;
  source.start(at);
  u.nextTime = at + buffer.duration;
  u.sources.push(source);
  source.onended = () => { u.sources = u.sources.filter((s) => s !== source); };
  u.samples += samples.length;
  hook.samplesScheduled += samples.length;
  if (hook.stopPressed) hook.samplesAfterStop += samples.length;
  if (hook.underruns === 0) $("m-underruns").textContent = "0";
}

function highlightLater(u, word) {
  const span = document.createElement("span");
  span.textContent = word.word + " ";
  $("words").append(span);
  const delayMs = Math.max(0, ((u.audioStart ?? audio.currentTime) + word.start_s - audio.currentTime) * 1000);
  u.timers.push(setTimeout(() => span.classList.add("spoken"), delayMs));
}

function stopUtterance(pressed) {
  const u = current;
  if (!u || u.stopped) return;
  u.stopped = true;
  if (pressed) {
    hook.stopPressed = true;
    u.stopPressedAt = performance.now();
  }
  for (const source of u.sources) {
    try { source.stop(); } catch (e) { /* already ended */ }
  }
  u.sources = [];
  for (const timer of u.timers) clearTimeout(timer);
  if (u.ws.readyState <= WebSocket.OPEN) send(u, { type: "cancel" });
}

// ---- type-ahead: the text goes out as it is typed, like an LLM's tokens -------------------------------------

let typed = "";
$("text").addEventListener("input", () => {
  if (!$("typeahead").checked) return;
  const text = $("text").value;
  if (!current || current.stopped || current.ended || !text.startsWith(typed)) {
    if (!text.trim()) return;
    startUtterance(null);
    typed = "";
  }
  const fragment = text.slice(typed.length);
  typed = text;
  if (fragment) send(current, { type: "text", text: fragment });
});

$("speak").addEventListener("click", () => {
  const text = $("text").value;
  if ($("typeahead").checked && current && !current.stopped && !current.ended) {
    if (text.length > typed.length) send(current, { type: "text", text: text.slice(typed.length) });
    typed = text;
    current.ended = true;
    send(current, { type: "end" });
    return;
  }
  if (!text.trim()) { show("status", "Type some text first.", true); return; }
  show("status", "");
  startUtterance(text);
});
$("stop").addEventListener("click", () => stopUtterance(true));

// ---- cloning ----------------------------------------------------------------------------------------------

let recorded = null;  // a WAV blob from the microphone
$("clone").addEventListener("click", async () => {
  const file = recorded || $("clone-file").files[0];
  if (!file) { show("clone-status", "Choose a clip or record one.", true); return; }
  const form = new FormData();
  form.append("name", $("clone-name").value.trim());
  form.append("ref_text", $("clone-text").value.trim());
  form.append("file", file, file.name || "recording.wav");
  show("clone-status", "cloning…");
  try {
    const voice = await api("/v1/voices", { method: "POST", body: form });
    await loadVoices(voice.name);  // the picker holds the new voice before the status says it is ready
    show("clone-status", `cloned ${voice.name}`);
  } catch (e) {
    show("clone-status", e.message, true);
  }
});

$("record").addEventListener("click", async () => {
  if ($("record").dataset.recording) { $("record").dataset.recording = ""; return; }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const ctx = new AudioContext();
  const input = ctx.createMediaStreamSource(stream);
  const tap = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  tap.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  input.connect(tap);
  tap.connect(ctx.destination);
  $("record").dataset.recording = "1";
  $("record").textContent = "Stop recording";
  const wait = () => new Promise((resolve) => {
    const check = () => ($("record").dataset.recording ? setTimeout(check, 100) : resolve());
    check();
  });
  await wait();
  tap.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  recorded = wav(chunks, ctx.sampleRate);
  recorded.name = "recording.wav";
  ctx.close();
  $("record").textContent = "Record";
  show("clone-status", `recorded ${(recorded.size / 2 / ctx.sampleRate).toFixed(1)} s`);
});

function wav(chunks, rate) {
  const n = chunks.reduce((a, c) => a + c.length, 0), view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (o, s) => [...s].forEach((c, i) => view.setUint8(o + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVEfmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) for (const x of c) { view.setInt16(o, Math.max(-1, Math.min(1, x)) * 32767, true); o += 2; }
  return new Blob([view], { type: "audio/wav" });
}

// ---- the API key: entered once, kept in this browser ------------------------------------------------------

$("api-key").value = localStorage.getItem("qwen3tts-api-key") || "";
$("api-key").addEventListener("change", () => {
  localStorage.setItem("qwen3tts-api-key", $("api-key").value.trim());
  loadModel();
});
loadModel();
