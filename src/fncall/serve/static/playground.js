// fncall playground: plain JS against the server's own /v1/chat/completions. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
const NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

function fn(name, description, properties, required) {
  return { type: "function", function: { name, description,
    parameters: { type: "object", properties, required: required || Object.keys(properties) } } };
}

// Example tool sets; the mocks prefill the result box of a call so a demo needs no typing.
const EXAMPLES = {
  weather: {
    tools: [
      fn("get_weather", "Current weather for a city.", {
        city: { type: "string", description: "City name, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" },
      }, ["city"]),
      fn("get_time", "Local time in a city.", { city: { type: "string", description: "City name" } }),
    ],
    mocks: {
      get_weather: (a) => ({ city: a.city, temperature: 21, unit: a.unit || "celsius", sky: "sunny" }),
      get_time: (a) => ({ city: a.city, time: new Date().toISOString().slice(11, 16) }),
    },
  },
  calculator: {
    tools: [
      fn("add", "Add two numbers.", { a: { type: "number" }, b: { type: "number" } }),
      fn("multiply", "Multiply two numbers.", { a: { type: "number" }, b: { type: "number" } }),
    ],
    mocks: { add: (a) => a.a + a.b, multiply: (a) => a.a * a.b },
  },
  none: { tools: [], mocks: {} },
};

const state = { messages: [], tools: [], mocks: {}, serverTools: [], busy: false };

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function setStatus(text) { $("status").textContent = text; }

// ---- tools editor ------------------------------------------------------------------------

function validateTools(text) {
  let tools;
  try { tools = JSON.parse(text || "[]"); } catch (e) { return { error: "not valid JSON: " + e.message }; }
  if (!Array.isArray(tools)) return { error: "tools must be a JSON array of {type: 'function', function: {...}}" };
  const seen = new Set();
  for (const [i, t] of tools.entries()) {
    const f = t && t.function;
    if (!t || t.type !== "function" || !f) return { error: `tools[${i}]: needs type "function" and a function object` };
    if (typeof f.name !== "string" || !NAME_RE.test(f.name)) return { error: `tools[${i}].function.name: 1-64 letters, digits, _ or -` };
    if (seen.has(f.name)) return { error: `tools[${i}]: duplicate name ${f.name}` };
    seen.add(f.name);
    const p = f.parameters;
    if (p !== undefined && (typeof p !== "object" || p === null || Array.isArray(p) || (p.type && p.type !== "object")))
      return { error: `tools[${i}].function.parameters: must be a JSON Schema object of type "object"` };
  }
  return { tools };
}

function onToolsEdited() {
  const { tools, error } = validateTools($("tools-json").value);
  $("tools-json").classList.toggle("invalid", Boolean(error));
  $("tools-error").textContent = error || "";
  if (error) { $("tools-summary").textContent = ""; return; }
  state.tools = tools;
  $("tools-summary").textContent = tools.length
    ? `${tools.length} tool(s): ${tools.map((t) => t.function.name).join(", ")}` : "no tools";
  const choice = $("tool-choice"), previous = choice.value;
  choice.innerHTML = "";
  for (const mode of ["auto", "none", "required", ...tools.map((t) => "function:" + t.function.name)]) {
    choice.add(new Option(mode.startsWith("function:") ? `call ${mode.slice(9)}` : mode, mode));
  }
  choice.value = [...choice.options].some((o) => o.value === previous) ? previous : "auto";
}

function loadToolSet(name) {
  const example = name === "server" ? { tools: state.serverTools, mocks: {} } : EXAMPLES[name];
  state.mocks = example.mocks;
  $("tools-json").value = JSON.stringify(example.tools, null, 2);
  onToolsEdited();
}

function toolChoiceValue() {
  const v = $("tool-choice").value;
  return v.startsWith("function:") ? { type: "function", function: { name: v.slice(9) } } : v;
}

// ---- rendering -----------------------------------------------------------------------------

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function pretty(argumentsText) {
  try { return JSON.stringify(JSON.parse(argumentsText || "{}"), null, 2); } catch { return argumentsText; }
}

function callCard(call, tag) {
  const card = document.createElement("div");
  card.className = "call";
  card.dataset.callId = call.id;
  card.innerHTML = `<span class="name"></span><span class="tag"></span><pre class="args"></pre><div class="result"></div>`;
  card.querySelector(".name").textContent = `${call.function.name}(…)`;
  card.querySelector(".tag").textContent = tag;
  card.querySelector(".args").textContent = pretty(call.function.arguments);
  $("log").appendChild(card);
  return card;
}

function showResult(callId, content) {
  const card = document.querySelector(`.call[data-call-id="${CSS.escape(callId)}"]`);
  if (!card) return;
  const box = card.querySelector(".result");
  box.textContent = "result: " + content;
}

function renderExecuted(messages) {
  for (const m of messages) {
    state.messages.push(m);
    if (m.role === "assistant") {
      if (m.content) bubble("assistant", m.content);
      for (const c of m.tool_calls || []) callCard(c, "run on server");
    } else if (m.role === "tool") {
      showResult(m.tool_call_id, m.content);
    }
  }
}

function mockResult(call) {
  const mock = state.mocks[call.function.name];
  if (!mock) return "";
  try { return JSON.stringify(mock(JSON.parse(call.function.arguments || "{}"))); } catch (e) { return ""; }
}

function askForResults(calls) {
  const boxes = calls.map((call) => {
    const card = document.querySelector(`.call[data-call-id="${CSS.escape(call.id)}"]`) || callCard(call, "");
    const box = card.querySelector(".result");
    box.innerHTML = "<label>result to send back<textarea rows='2'></textarea></label>";
    const area = box.querySelector("textarea");
    area.value = mockResult(call);
    return { call, area, box };
  });
  const actions = document.createElement("div");
  actions.className = "pending-actions";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Send tool results";
  button.onclick = async () => {
    actions.remove();
    for (const { call, area, box } of boxes) {
      state.messages.push({ role: "tool", tool_call_id: call.id, content: area.value || "(no result)" });
      box.textContent = "result: " + (area.value || "(no result)");
    }
    await runTurn();
  };
  actions.appendChild(button);
  $("log").appendChild(actions);
}

// ---- the API -------------------------------------------------------------------------------

function requestBody() {
  const body = { model: $("model").value, messages: state.messages, stream: $("stream").checked,
    temperature: Number($("temperature").value) || 0 };
  if (state.tools.length) {
    body.tools = state.tools;
    body.tool_choice = toolChoiceValue();
    body.parallel_tool_calls = $("parallel").checked;
  }
  return body;
}

async function errorText(response) {
  try { const j = await response.json(); return `${response.status}: ${j.error.message}`; }
  catch { return `HTTP ${response.status}`; }
}

async function readStream(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        onEvent(chunk);
      }
    }
  }
}

async function streamedTurn(response) {
  const message = { role: "assistant", content: "", tool_calls: [] };
  let textBubble = null;
  const cards = [];
  await readStream(response, (chunk) => {
    if (chunk.fncall_executed_messages) {
      renderExecuted(chunk.fncall_executed_messages);
      textBubble = null;
      message.content = "";
    }
    const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
    if (!delta) return;
    if (delta.content) {
      message.content += delta.content;
      textBubble = textBubble || bubble("assistant", "");
      textBubble.textContent = message.content;
    }
    for (const part of delta.tool_calls || []) {
      let call = message.tool_calls[part.index];
      if (!call) {
        call = message.tool_calls[part.index] = { id: part.id, type: "function", function: { name: "", arguments: "" } };
        cards[part.index] = callCard(call, "");
      }
      call.function.name += (part.function && part.function.name) || "";
      call.function.arguments += (part.function && part.function.arguments) || "";
      cards[part.index].querySelector(".name").textContent = `${call.function.name}(…)`;
      cards[part.index].querySelector(".args").textContent = call.function.arguments;
    }
  });
  cards.forEach((card, i) => { card.querySelector(".args").textContent = pretty(message.tool_calls[i].function.arguments); });
  if (!message.tool_calls.length) delete message.tool_calls;
  if (!message.content) message.content = null;
  return message;
}

async function wholeTurn(response) {
  const body = await response.json();
  renderExecuted(body.fncall_executed_messages || []);
  const message = body.choices[0].message;
  if (message.content) bubble("assistant", message.content);
  for (const call of message.tool_calls || []) callCard(call, "");
  return { role: "assistant", content: message.content, tool_calls: message.tool_calls };
}

async function runTurn() {
  setBusy(true);
  const started = performance.now();
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(requestBody()) });
    if (!response.ok) throw new Error(await errorText(response));
    const message = $("stream").checked ? await streamedTurn(response) : await wholeTurn(response);
    if (!message.tool_calls) delete message.tool_calls;
    state.messages.push(message);
    setStatus(`answered in ${((performance.now() - started) / 1000).toFixed(2)} s`);
    if (message.tool_calls && message.tool_calls.length) askForResults(message.tool_calls);
  } catch (e) {
    bubble("error", String(e.message || e));
    setStatus("error");
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  state.busy = busy;
  $("send").disabled = busy;
  if (busy) setStatus("thinking…");
}

async function loadServerInfo() {
  try {
    const models = await fetch("/v1/models", { headers: headers() });
    if (!models.ok) { setStatus(await errorText(models)); return; }
    const { data } = await models.json();
    $("model").innerHTML = "";
    for (const m of data) $("model").add(new Option(m.id, m.id));
    const tools = await fetch("/v1/tools", { headers: headers() });
    if (tools.ok) state.serverTools = (await tools.json()).data;
    setStatus(`connected: ${data.map((m) => m.id).join(", ")}`);
  } catch (e) {
    setStatus("server unreachable: " + e.message);
  }
}

$("tool-set").addEventListener("change", (e) => loadToolSet(e.target.value));
$("tools-json").addEventListener("input", onToolsEdited);
$("api-key").addEventListener("change", () => { localStorage.setItem("fncall-key", $("api-key").value); loadServerInfo(); });
$("clear").addEventListener("click", () => { state.messages = []; $("log").innerHTML = ""; });
$("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  const question = $("question").value.trim();
  if (!question || state.busy) return;
  if ($("tools-error").textContent) { bubble("error", "fix the tools JSON first"); return; }
  $("question").value = "";
  state.messages.push({ role: "user", content: question });
  bubble("user", question);
  await runTurn();
});
$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").requestSubmit(); }
});

$("api-key").value = localStorage.getItem("fncall-key") || "";
loadToolSet("weather");
loadServerInfo().then(() => { if (state.serverTools.length) { $("tool-set").value = "server"; loadToolSet("server"); } });
