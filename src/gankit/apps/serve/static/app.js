// gankit serve: the page over one run. /api/info says which panels the run offers; each panel
// posts its fields (JSON) or its uploads (a form) to /api/PANEL and shows the PNG (with its
// clips), or the lines, that come back. The server checks everything: this page only reads
// inputs and shows answers, so its error box shows the server's own one-line message. Panels are
// drawn by their names and fields (a task's serve.py declares them), never by task.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
let INFO = null;

// -- messages ---------------------------------------------------------------------------------
function showError(msg) {
  const e = $("#error");
  e.textContent = msg;
  e.hidden = false;
}

function clearError() {
  const e = $("#error");
  e.textContent = "";
  e.hidden = true;
}

function showNotes(notes) {
  const n = $("#notes");
  n.textContent = (notes || []).join(" · ");
  n.hidden = !notes || notes.length === 0;
}

// -- talking to the server --------------------------------------------------------------------
async function call(panel, body) {
  const opts = body instanceof FormData
    ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let res;
  try {
    res = await fetch(`/api/${panel}`, opts);
  } catch (err) {
    throw new Error(`the server did not answer (${err.message}); is gankit serve still running?`);
  }
  let data = null;
  try {
    data = await res.json();
  } catch (err) {
    data = null;
  }
  if (!res.ok) throw new Error(data && data.error ? data.error : `${res.status} ${res.statusText}`);
  return data;
}

// A number box's value as a number when it is one; otherwise as typed, so the server's
// message names what was wrong.
function num(input) {
  const v = input.value.trim();
  return v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
}

// Small images (MNIST is 28 px) are shown enlarged by a whole factor, pixels kept sharp.
function fit(img, w, h) {
  const side = Math.max(w, h);
  let scale = 1;
  if (side < 360) scale = Math.max(1, Math.round(360 / side));
  else if (side > 640) scale = 640 / side;
  img.style.width = `${Math.round(w * scale)}px`;
  img.classList.toggle("pixelated", scale > 1);
}

// An answer: an image, an image with the clips it shows (the player, and the download link
// saves the WAV), or lines of text. The page draws answers by their fields, never by task.
function showResult(el, data) {
  const figure = el.closest("figure");
  const link = figure.querySelector(".download");
  if (data.text) {
    el.textContent = data.text.join("\n");
    el.hidden = false;
    link.href = URL.createObjectURL(new Blob([data.text.join("\n") + "\n"], { type: "text/plain" }));
  } else {
    el.src = data.image;
    el.hidden = false;
    fit(el, data.width, data.height);
    link.href = data.image;
  }
  const player = figure.querySelector("audio");
  if (player) {
    player.hidden = !data.audio;
    if (data.audio) {
      player.src = data.audio;
      link.href = data.audio;
    }
  }
  link.textContent = `Download ${data.filename.split(".").pop().toUpperCase()}`;
  link.download = data.filename;
  link.hidden = false;
  showNotes(data.notes);
}

// Run `fn` now, or once more after the call in flight (slider moves while the model works
// collapse into one request with the latest values).
function latest(fn) {
  let busy = false;
  let again = false;
  const go = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      await fn();
    } finally {
      busy = false;
      if (again) {
        again = false;
        go();
      }
    }
  };
  return go;
}

// Post `body` to `panel`, show the answer in `img`; errors go to #error.
async function runPanel(panel, body, img, button) {
  if (button) button.classList.add("busy");
  try {
    const data = await call(panel, body);
    clearError();
    showResult(img, data);
  } catch (err) {
    showError(err.message);
  } finally {
    if (button) button.classList.remove("busy");
  }
}

function setLimits(input, field) {
  if (!field) return;
  if (field.min !== undefined) input.min = field.min;
  if (field.max !== undefined) input.max = field.max;
  if (field.default !== undefined && field.default !== null) input.value = field.default;
}

function withClass(body) {
  const c = $("#class").value;
  if (INFO.conditional && c !== "") body.class = Number(c);
  return body;
}

// The panels with a section of their own; every upload panel shares #panel-upload (a run has one).
const SECTIONS = { sample: "#panel-sample", interp: "#panel-interp", codes: "#panel-codes", lines: "#panel-lines" };

function section(panel) {
  const s = $(SECTIONS[panel.name] || "#panel-upload");
  s.hidden = false;
  $(".about", s).textContent = panel.about;
  return s;
}

// -- sampling panels: sample, interp, codes ----------------------------------------------------
function setupSample(panel) {
  section(panel);
  setLimits($("#n"), panel.fields.n);
  setLimits($("#seed"), panel.fields.seed);
  const go = latest(() => runPanel("sample", withClass({ n: num($("#n")), seed: num($("#seed")) }),
    $("#samples"), $("#sample-btn")));
  $("#sample-btn").addEventListener("click", go);
  $("#seed-random").addEventListener("click", () => {
    $("#seed").value = Math.floor(Math.random() * 1e6);
    go();
  });
  return go;
}

function setupInterp(panel) {
  section(panel);
  const t = $("#interp-slider");
  const go = latest(() => runPanel("interp", withClass({
    seed_a: num($("#seed-a")), seed_b: num($("#seed-b")), t: Number(t.value),
  }), $("#interp")));
  t.addEventListener("input", () => {
    $("#interp-t").textContent = Number(t.value).toFixed(2);
    go();
  });
  $("#seed-a").addEventListener("change", go);
  $("#seed-b").addEventListener("change", go);
  return go;
}

function setupCodes(panel) {
  section(panel);
  const body = () => {
    const b = { seed: num($("#codes-seed")) };
    if (panel.fields.cat) b.cat = Number($("#code-cat").value);
    if (panel.fields.cont) b.cont = [...document.querySelectorAll(".code-slider")].map((s) => Number(s.value));
    return withClass(b);
  };
  const go = latest(() => runPanel("codes", body(), $("#codes-img")));
  if (panel.fields.cat) {
    $("#code-cat-label").hidden = false;
    for (let i = 0; i <= panel.fields.cat.max; i++) $("#code-cat").add(new Option(String(i), String(i)));
    $("#code-cat").addEventListener("change", go);
  }
  if (panel.fields.cont) {
    for (let i = 0; i < panel.fields.cont.n; i++) {
      const label = document.createElement("label");
      label.textContent = `c${i + 1} `;
      const s = document.createElement("input");
      Object.assign(s, { type: "range", min: "-1", max: "1", step: "0.05", value: "0", className: "code-slider" });
      const out = document.createElement("output");
      out.textContent = "+0.00";
      s.addEventListener("input", () => {
        out.textContent = (s.value >= 0 ? "+" : "") + Number(s.value).toFixed(2);
        go();
      });
      label.append(s, out);
      $("#code-sliders").append(label);
    }
  }
  $("#codes-seed").addEventListener("change", go);
  return go;
}

// -- uploads ----------------------------------------------------------------------------------
// The hole is painted twice: in red on the visible canvas over the image, and in white on
// black on an offscreen canvas of the image's own size, which is what is sent.
const mask = { canvas: document.createElement("canvas"), painted: false };

function resetMask(w, h) {
  const view = $("#mask-canvas");
  for (const c of [view, mask.canvas]) {
    c.width = w;
    c.height = h;
  }
  const m = mask.canvas.getContext("2d");
  m.fillStyle = "#000";
  m.fillRect(0, 0, w, h);
  view.getContext("2d").clearRect(0, 0, w, h);
  mask.painted = false;
}

function setupPainting() {
  const view = $("#mask-canvas");
  let last = null;
  const at = (e) => {
    const r = view.getBoundingClientRect();
    return [(e.clientX - r.left) * view.width / r.width, (e.clientY - r.top) * view.height / r.height];
  };
  const stroke = (a, b) => {
    const size = Number($("#brush-size").value);
    for (const [ctx, colour] of [[view.getContext("2d"), "rgba(235, 40, 40, 1)"], [mask.canvas.getContext("2d"), "#fff"]]) {
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = size;
      ctx.lineCap = "round";
      ctx.beginPath();
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(b[0], b[1], size / 2, 0, 2 * Math.PI);
      ctx.fill();
    }
    mask.painted = true;
  };
  view.addEventListener("pointerdown", (e) => {
    last = at(e);
    view.setPointerCapture(e.pointerId);
    stroke(last, last);
  });
  view.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = at(e);
    stroke(last, p);
    last = p;
  });
  const stop = () => { last = null; };
  view.addEventListener("pointerup", stop);
  view.addEventListener("pointercancel", stop);
  $("#brush-size").addEventListener("input", () => { $("#brush-out").textContent = $("#brush-size").value; });
  $("#clear-mask").addEventListener("click", () => resetMask(view.width, view.height));
}

// Show a chosen file in `img`; `onload(w, h)` once it is decoded (not called for a file the
// browser cannot show: the server then says what is wrong with it).
function preview(input, img, onload) {
  const file = input.files[0];
  if (!file) return;
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = URL.createObjectURL(file);
  img.onload = () => {
    img.hidden = false;
    fit(img, img.naturalWidth, img.naturalHeight);
    if (onload) onload(img.naturalWidth, img.naturalHeight);
  };
  img.onerror = () => { img.hidden = true; };
  img.src = img.dataset.url;
}

function checkSize(files) {
  const limit = INFO.limits.max_upload_mb;
  const total = files.reduce((s, f) => s + f.size, 0) / 2 ** 20;
  if (total > limit) {
    throw new Error(`the upload is ${total.toFixed(1)} MB, over the limit of ${limit} MB (gankit serve --max-upload-mb)`);
  }
}

function setupUpload(panel) {
  const s = section(panel);
  $("#upload-title").textContent = panel.title;
  const two = panel.uploads.includes("prev");
  const painted = panel.uploads.includes("mask");
  for (const el of s.querySelectorAll(".two-uploads")) el.hidden = !two;
  if (two) {  // previous | predicted middle | next
    $("#input-cap").textContent = "previous frame";
    $("#output-cap").textContent = "middle frame (predicted)";
    $("#output-figure").style.order = 1;
    $("#next-figure").style.order = 2;
  }
  $(".one-upload", s).hidden = two;
  for (const el of s.querySelectorAll(".mask-tools")) el.hidden = !painted;
  $("#mask-canvas").hidden = !painted;
  resetMask(1, 1);
  if (panel.fields.direction) {
    const d = panel.fields.direction;
    $("#direction-label").hidden = d.values.length < 2;
    for (const v of d.values) $("#direction").add(new Option(v, v));
  }
  // the panel's own labelled numbers (a task's serve.py declares them: Int/Float with a label)
  const own = Object.entries(panel.fields).filter(([, f]) => f.label);
  for (const [name, f] of own) {
    const input = document.createElement("input");
    input.type = "number";
    input.step = f.type === "int" ? "1" : "any";
    input.dataset.field = name;
    setLimits(input, f);
    const label = document.createElement("label");
    label.append(f.label + " ", input);
    $("#own-fields").append(label);
  }
  if (panel.fields.steps) {
    $(".invert-tools", s).hidden = false;
    setLimits($("#invert-steps"), panel.fields.steps);
    setLimits($("#invert-restarts"), panel.fields.restarts);
  }
  if (painted) setupPainting();
  const inputs = two ? [$("#upload-prev"), $("#upload-next")] : [$("#upload")];
  const ready = () => {
    $("#run-btn").disabled = !inputs.every((i) => i.files.length > 0);
    // a new input: the last output no longer belongs to it
    $("#output-img").hidden = true;
    $("#panel-upload figcaption .download").hidden = true;
  };
  if (two) {
    $("#upload-prev").addEventListener("change", () => { preview($("#upload-prev"), $("#input-img")); ready(); });
    $("#upload-next").addEventListener("change", () => { preview($("#upload-next"), $("#input-img-next")); ready(); });
  } else {
    $("#upload").addEventListener("change", () => {
      resetMask(1, 1);
      preview($("#upload"), $("#input-img"), (w, h) => {
        resetMask(w, h);
        const brush = $("#brush-size");
        brush.max = Math.max(8, Math.round(Math.max(w, h) / 4));
        brush.value = Math.max(1, Math.round(Math.min(w, h) / 8));
        $("#brush-out").textContent = brush.value;
      });
      ready();
    });
  }
  $("#run-btn").addEventListener("click", async () => {
    try {
      checkSize(inputs.map((i) => i.files[0]));
    } catch (err) {
      showError(err.message);
      return;
    }
    const form = new FormData();
    if (two) {
      form.append("prev", $("#upload-prev").files[0]);
      form.append("next", $("#upload-next").files[0]);
    } else {
      form.append("image", $("#upload").files[0]);
    }
    if (painted) {
      const blob = await new Promise((done) => mask.canvas.toBlob(done, "image/png"));
      form.append("mask", blob, "mask.png");
    }
    if (panel.fields.direction) form.append("direction", $("#direction").value);
    for (const input of $("#own-fields").querySelectorAll("input")) form.append(input.dataset.field, input.value);
    if (panel.fields.steps) {
      form.append("steps", $("#invert-steps").value);
      form.append("restarts", $("#invert-restarts").value);
    }
    await runPanel(panel.name, form, $("#output-img"), $("#run-btn"));
  });
}

// -- the lines panel ----------------------------------------------------------------------------
function setupLines(panel) {
  section(panel);
  setLimits($("#lines-n"), panel.fields.n);
  setLimits($("#lines-seed"), panel.fields.seed);
  const t = $("#temperature");
  t.value = panel.fields.temperature.default;
  const showT = () => { $("#temperature-out").textContent = Number(t.value).toFixed(2); };
  showT();
  $("#prefix").maxLength = panel.fields.prefix.max_len;
  if (panel.fields.topic) {
    $("#topic-label").hidden = false;
    panel.topics.forEach((name, i) => $("#topic").add(new Option(`${i}: ${name}`, String(i))));
  }
  const body = () => {
    const b = { n: num($("#lines-n")), seed: num($("#lines-seed")), temperature: Number(t.value),
      prefix: $("#prefix").value };
    if (panel.fields.topic && $("#topic").value !== "") b.topic = Number($("#topic").value);
    return b;
  };
  const go = latest(() => runPanel("lines", body(), $("#lines"), $("#lines-btn")));
  $("#lines-btn").addEventListener("click", go);
  t.addEventListener("input", showT);
  t.addEventListener("change", go);
  return go;
}

// -- the page ---------------------------------------------------------------------------------
const SETUP = { sample: setupSample, interp: setupInterp, codes: setupCodes, lines: setupLines };

function describe(info) {
  const parts = [`${info.task} run`, `preset ${info.preset || "custom"}`, `step ${info.step}`,
    info.ema ? "EMA weights" : "raw weights"];
  if (info.kind === "audio") parts.push("audio clips");
  else if (info.kind === "text") parts.push("text");
  else if (info.shape) parts.push(info.kind === "points" ? "2-D points" : `images ${info.shape.join("×")}`);
  if (info.conditional) parts.push(`${info.classes.length} classes`);
  return parts.join(" · ");
}

async function main() {
  try {
    const res = await fetch("/api/info");
    INFO = await res.json();
  } catch (err) {
    showError(`could not read /api/info (${err.message}); is gankit serve still running?`);
    return;
  }
  $("#run-name").textContent = INFO.run;
  $("#run-info").textContent = describe(INFO);
  if (INFO.message) {
    $("#message").textContent = INFO.message;
    $("#message").hidden = false;
  }
  if (INFO.conditional) {
    $(".class-pick").hidden = false;
    INFO.classes.forEach((name, i) => $("#class").add(new Option(`${i}: ${name}`, String(i))));
  }
  const first = [];
  for (const panel of INFO.panels) {
    if (SETUP[panel.name]) first.push(SETUP[panel.name](panel));
    else setupUpload(panel);
  }
  if (INFO.conditional) {
    $("#class").addEventListener("change", () => first.forEach((go) => go()));
  }
  for (const go of first) await go();  // the page opens with a grid, a walk and a code sample
}

main();
