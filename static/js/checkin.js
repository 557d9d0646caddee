// The check-in scanning page: camera, scanner and typed codes sent as JSON, one answer at a glance, and
// a queue kept in the phone's storage so no scan is lost while the connection is down.
//
// Every scan gets an id made here. It is stored before it is sent and removed only once the server has
// answered, so a scan sent twice (a dropped answer, a reload) is recognised by the server and answered
// with its first result. Without this script the page is a plain form that posts each scan.

const root = document.getElementById("checkin");
const form = document.getElementById("scan-form");
const input = document.getElementById("code");
const answerBox = document.getElementById("answer");
const arrived = document.getElementById("arrived");
const queueBox = document.getElementById("queue");
const queueStatus = document.getElementById("queue-status");
const lateBox = document.getElementById("late");
const lateList = document.getElementById("late-results");
const cameraStart = document.getElementById("camera-start");
const cameraStop = document.getElementById("camera-stop");
const cameraStatus = document.getElementById("camera-status");
const video = document.getElementById("camera-video");

const QUEUE_KEY = "convene-checkin-queue";
const DEVICE_KEY = "convene-checkin-device";
const CAMERA_KEY = "convene-checkin-camera";
const REPEAT_MS = 4000; // the same badge held in front of the camera is one scan, not one per frame
const RETRY_MS = 5000;
const TONES = { checked_in: "ok", already: "warn", matches: "warn", queued: "wait", reverted: "wait" };

let csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const inFlight = new Set();
const shownLate = new Set();
let flushing = false;

// -- storage -----------------------------------------------------------------------------------------

function randomId(bytes) {
  // crypto.getRandomValues works on plain HTTP too (crypto.randomUUID needs a secure context).
  const values = new Uint8Array(bytes);
  crypto.getRandomValues(values);
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

function store(key, value) {
  try { localStorage.setItem(key, value); } catch (_) { /* private mode: the queue lives in memory only */ }
}

function read(key) {
  try { return localStorage.getItem(key); } catch (_) { return null; }
}

const device = read(DEVICE_KEY) || `phone-${randomId(6)}`;
store(DEVICE_KEY, device);
let memoryQueue = [];

function loadQueue() {
  try {
    const saved = JSON.parse(read(QUEUE_KEY) || "[]");
    return Array.isArray(saved) ? saved : memoryQueue;
  } catch (_) {
    return memoryQueue;
  }
}

function saveQueue(queue) {
  memoryQueue = queue;
  store(QUEUE_KEY, JSON.stringify(queue));
  showQueue();
}

function forget(scanId) {
  saveQueue(loadQueue().filter((item) => item.scan_id !== scanId));
}

function showQueue() {
  const mine = loadQueue();
  queueBox.hidden = mine.length === 0;
  queueStatus.textContent = mine.length === 1
    ? "1 scan is saved on this phone and will be sent when the connection returns."
    : `${mine.length} scans are saved on this phone and will be sent when the connection returns.`;
}

// -- sound ------------------------------------------------------------------------------------------

let audio = null;

function beep(tone) {
  const patterns = { ok: [[1046, 0.12]], warn: [[660, 0.1], [660, 0.1]], bad: [[196, 0.5]], wait: [[440, 0.08]] };
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    let at = audio.currentTime;
    for (const [frequency, length] of patterns[tone] || patterns.bad) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.15, at);
      gain.gain.exponentialRampToValueAtTime(0.001, at + length);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + length);
      at += length + 0.07;
    }
  } catch (_) { /* no sound on this browser: the colour and the text still say it */ }
}

// -- showing answers --------------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function toneOf(result) {
  return TONES[result] || "bad";
}

function hidden(name, value) {
  const node = el("input");
  node.type = "hidden";
  node.name = name;
  node.value = value;
  return node;
}

function answerNode(body) {
  const box = el("div", `answer-inner answer-${toneOf(body.result)}`);
  box.dataset.result = body.result;
  box.append(el("p", "answer-headline", body.headline));
  if (body.result === "already" && body.checked_in_at_text) {
    box.append(el("p", "answer-reason",
      `At ${body.checked_in_at_text}${body.checked_in_by ? ` by ${body.checked_in_by}` : ""}.`));
  } else if (body.reason) {
    box.append(el("p", "answer-reason", body.reason));
  }
  const person = body.person;
  if (person) {
    box.append(el("p", "answer-name", person.name));
    const details = el("dl", "answer-details");
    const rows = [];
    if (person.badge_name && person.badge_name !== person.name) rows.push(["Badge", person.badge_name]);
    if (person.delegation) rows.push(["Delegation", person.delegation]);
    if (person.organization) rows.push(["Organization", person.organization]);
    rows.push(["Ticket", `${person.ticket} · ${person.role}`], ["Reference", person.reference]);
    for (const [term, value] of rows) details.append(el("dt", "", term), el("dd", "", value));
    box.append(details);
    if (person.notes.length) {
      const notes = el("ul", "answer-notes");
      for (const note of person.notes) notes.append(el("li", "", note));
      box.append(notes);
    }
    if (body.fix_url) {
      const fix = el("a", "", "Fix or reprint the badge");
      fix.href = body.fix_url;
      const line = el("p", "answer-fix");
      line.append(fix);
      box.append(line);
    }
  }
  if (body.matches && body.matches.length) {
    const list = el("ul", "answer-matches");
    for (const match of body.matches) {
      const button = el("button", "match");
      button.type = "button";
      button.dataset.code = match.reference;
      button.append(el("span", "match-name", match.name));
      const detail = [match.delegation, match.organization, match.reference].filter(Boolean).join(" · ");
      button.append(el("span", "match-detail", match.status === "Confirmed" ? detail : `${detail} · ${match.status}`));
      const item = el("li");
      item.append(button);
      list.append(item);
    }
    box.append(list);
  }
  if (body.undo_url) {
    const undo = el("button", "button-secondary answer-undo-button", "Undo this check-in");
    undo.type = "button";
    undo.dataset.undoUrl = body.undo_url;
    const wrap = el("div", "answer-undo");
    wrap.append(undo);
    box.append(wrap);
  }
  return box;
}

function show(body) {
  answerBox.replaceChildren(answerNode(body));
  if (typeof body.arrived === "number") arrived.textContent = String(body.arrived);
  beep(toneOf(body.result));
}

function showLate(item, body) {
  if (shownLate.has(item.scan_id)) return;
  shownLate.add(item.scan_id);
  const line = el("li", `answer-${toneOf(body.result)}`);
  line.dataset.result = body.result;
  const who = body.person ? body.person.name : item.code;
  const when = new Date(item.scanned_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  line.append(el("strong", "", body.headline), document.createTextNode(`: ${who} (scanned ${when})`));
  if (body.reason && body.result !== "checked_in") line.append(document.createTextNode(` ${body.reason}`));
  lateList.append(line);
  lateBox.hidden = false;
  if (typeof body.arrived === "number") arrived.textContent = String(body.arrived);
}

function showQueued(item) {
  show({ result: "queued", headline: "Saved on this phone",
         reason: `No connection: “${item.code}” will be sent when it returns, and its result shown below.` });
}

// -- sending ----------------------------------------------------------------------------------------

async function freshToken() {
  // A session renewed elsewhere (a sign-in in another tab) changes the CSRF token this page holds.
  try {
    const page = await fetch(window.location.href, { credentials: "same-origin" });
    const found = (await page.text()).match(/name="csrf-token" content="([^"]+)"/);
    if (found) { csrfToken = found[1]; return true; }
  } catch (_) { /* still offline */ }
  return false;
}

async function post(url, payload) {
  return fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken,
               "X-Convene-Device": device },
    body: JSON.stringify(payload),
  });
}

// "answered" (body), "refused" (body: the server will never take it), "wait" (try later), "signin".
async function send(item, retried = false) {
  let response;
  try {
    response = await post(item.url, { code: item.code, scan_id: item.scan_id, device, scanned_at: item.scanned_at });
  } catch (_) {
    return { status: "wait" };
  }
  const isJson = (response.headers.get("Content-Type") || "").includes("application/json");
  if (response.ok && isJson) return { status: "answered", body: await response.json() };
  if (response.status === 422 && isJson) return { status: "refused", body: await response.json() };
  if (response.status === 400 && !retried && await freshToken()) return send(item, true);
  if (response.redirected || response.status === 401) return { status: "signin" };
  if (response.status === 403 || response.status === 404) return { status: "refused", body: {
    error: "This account may no longer check people in on this list." } };
  return { status: "wait" };
}

function refusedBody(item, body) {
  return { result: "unknown", headline: "Not sent", reason: body.error || `“${item.code}” was not accepted.` };
}

async function scan(code) {
  const item = { scan_id: `${Date.now().toString(36)}-${randomId(8)}`, code, url: root.dataset.scanUrl,
                 scanned_at: new Date().toISOString() };
  saveQueue([...loadQueue(), item]);
  if (navigator.onLine === false) { showQueued(item); return; }
  inFlight.add(item.scan_id);
  const outcome = await send(item);
  inFlight.delete(item.scan_id);
  if (outcome.status === "answered" || outcome.status === "refused") {
    forget(item.scan_id);
    shownLate.add(item.scan_id);
    show(outcome.status === "answered" ? outcome.body : refusedBody(item, outcome.body));
  } else if (outcome.status === "signin") {
    show({ result: "queued", headline: "Sign in again",
           reason: "Your session ended. Scans are kept on this phone: sign in in another tab, then come back." });
  } else {
    showQueued(item);
  }
}

async function flush() {
  if (flushing || navigator.onLine === false) return;
  flushing = true;
  try {
    for (const item of loadQueue()) {
      if (inFlight.has(item.scan_id)) continue;
      inFlight.add(item.scan_id);
      const outcome = await send(item);
      inFlight.delete(item.scan_id);
      if (outcome.status === "answered") {
        forget(item.scan_id);
        showLate(item, outcome.body);
      } else if (outcome.status === "refused") {
        forget(item.scan_id);
        showLate(item, refusedBody(item, outcome.body));
      } else {
        break; // still offline or signed out: keep the rest in order
      }
    }
  } finally {
    flushing = false;
  }
}

async function undo(url) {
  let response;
  try {
    response = await post(url, {});
  } catch (_) {
    show({ result: "unknown", headline: "Not undone", reason: "No connection; try again when it returns." });
    return;
  }
  const body = (response.headers.get("Content-Type") || "").includes("application/json") ? await response.json() : {};
  if (response.ok) show({ result: "reverted", headline: body.headline, reason: body.reason, arrived: body.arrived });
  else show({ result: "unknown", headline: "Not undone", reason: body.error || "The check-in could not be undone." });
}

// -- the text box: scanners type the code and Enter ----------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = input.value.trim();
  input.value = "";
  input.focus();
  if (code) scan(code);
});

answerBox.addEventListener("click", (event) => {
  const match = event.target.closest("button[data-code]");
  const undoButton = event.target.closest("button[data-undo-url]");
  if (match) { event.preventDefault(); scan(match.dataset.code); input.focus(); }
  if (undoButton) { event.preventDefault(); undo(undoButton.dataset.undoUrl); input.focus(); }
});
// The answer the server rendered (a page reloaded after a POST) has forms; with the script, buttons act.
answerBox.addEventListener("submit", (event) => {
  const code = event.target.querySelector('input[name="code"]');
  if (code) { event.preventDefault(); scan(code.value); input.focus(); }
});

// The box keeps the focus so a USB or Bluetooth scanner always types into it.
input.addEventListener("blur", () => {
  setTimeout(() => {
    const active = document.activeElement;
    if (!active || active === document.body) input.focus({ preventScroll: true });
  }, 150);
});
input.addEventListener("pointerdown", () => input.removeAttribute("inputmode"));
form.querySelector('input[name="device"]').value = device;

// -- the camera ---------------------------------------------------------------------------------------

let stream = null;
let detector = null;
let lastCode = "";
let lastAt = 0;
const canvas = document.createElement("canvas");

function cameraProblem() {
  if (!window.isSecureContext) {
    return "The camera works only on a secure (https://) address, and this page was opened without one. " +
      "Type references or names, or use a USB or Bluetooth scanner: it types into the box above.";
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This browser gives the page no camera. Type references or names, or use a USB or Bluetooth scanner.";
  }
  return "";
}

async function makeDetector() {
  if ("BarcodeDetector" in window) {
    try {
      if ((await window.BarcodeDetector.getSupportedFormats()).includes("qr_code")) {
        return new window.BarcodeDetector({ formats: ["qr_code"] });
      }
    } catch (_) { /* fall back to the polyfill */ }
  }
  const polyfill = await import(root.dataset.polyfillUrl);
  const wasmUrl = root.dataset.wasmUrl;
  // The reader is served from this site (no CDN), which the page's content security policy requires.
  polyfill.prepareZXingModule({
    overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? wasmUrl : prefix + path) },
  });
  return new polyfill.BarcodeDetector({ formats: ["qr_code"] });
}

async function startCamera() {
  const problem = cameraProblem();
  if (problem) { cameraStatus.textContent = problem; return; }
  cameraStatus.textContent = "Starting the camera…";
  try {
    detector = detector || await makeDetector();
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (error) {
    const why = {
      NotAllowedError: "Camera permission was refused. Allow the camera for this site in the browser's settings, " +
        "or type references and names instead.",
      NotFoundError: "This device has no camera. Type references or names, or use a USB or Bluetooth scanner.",
      NotReadableError: "The camera is in use by another app. Close it and try again.",
    }[error && error.name];
    cameraStatus.textContent = why || `The camera could not start (${(error && error.message) || error}). ` +
      "Type references or names instead.";
    store(CAMERA_KEY, "off");
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  await video.play().catch(() => {});
  cameraStart.hidden = true;
  cameraStop.hidden = false;
  cameraStatus.textContent = "Hold the badge's QR code in front of the camera.";
  store(CAMERA_KEY, "on");
  // The on-screen keyboard would cover the camera: it opens only when the box is tapped.
  input.setAttribute("inputmode", "none");
  detectLoop();
}

function stopCamera() {
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  video.hidden = true;
  video.srcObject = null;
  cameraStart.hidden = false;
  cameraStop.hidden = true;
  cameraStatus.textContent = "Camera off.";
  store(CAMERA_KEY, "off");
  input.removeAttribute("inputmode");
}

async function detectLoop() {
  while (stream) {
    if (video.readyState >= 2 && video.videoWidth) {
      try {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        const context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(video, 0, 0);
        const found = await detector.detect(context.getImageData(0, 0, canvas.width, canvas.height));
        const value = found.length ? found[0].rawValue : "";
        const now = Date.now();
        if (value && (value !== lastCode || now - lastAt > REPEAT_MS)) {
          lastCode = value;
          lastAt = now;
          scan(value);
        } else if (value) {
          lastAt = now;
        }
      } catch (_) { /* one unreadable frame: try the next */ }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const problem = cameraProblem();
if (problem) {
  cameraStatus.textContent = problem;
} else {
  cameraStart.hidden = false;
  cameraStatus.textContent = "";
  cameraStart.addEventListener("click", () => { beep("wait"); startCamera(); });
  cameraStop.addEventListener("click", stopCamera);
  if (read(CAMERA_KEY) === "on") startCamera();
}

// -- the queue ------------------------------------------------------------------------------------------

window.addEventListener("online", flush);
setInterval(flush, RETRY_MS);
showQueue();
flush();
input.focus();
