// The web console: lists the policies and voices, speaks through POST /tts/sync as any
// client does, plays the presigned URL and highlights each word as its speech mark comes due.
// No framework, no build step; the token lives in the password field only.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // The formats an <audio> element may play, with the type it is asked about.
  const PLAYABLE = {
    wav: "audio/wav",
    mp3: "audio/mpeg",
    opus: 'audio/ogg; codecs="opus"',
    aac: "audio/aac",
    flac: "audio/flac",
  };
  const policies = new Map();
  const voices = new Map();
  let marks = []; // the answer's word marks, by time
  let spans = []; // the element of each mark (null: not shown)
  let current = null;
  let frame = 0;

  class Refused extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function headers(json) {
    const sent = { Accept: "application/json" };
    if (json) sent["Content-Type"] = "application/json";
    const token = $("token").value.trim();
    if (token) sent.Authorization = `Bearer ${token}`;
    return sent;
  }

  async function call(path, options = {}) {
    const response = await fetch(path, { cache: "no-store", ...options });
    if (!response.ok) {
      let body = {};
      try {
        body = await response.json();
      } catch {
        // not JSON: the status says enough
      }
      throw new Refused(response.status, body.error || "http_error",
                        body.message || response.statusText);
    }
    return response;
  }

  function showError(error) {
    let text = error.message;
    if (error instanceof Refused) {
      text = `${error.status} ${error.code}: ${error.message}`;
      if (error.status === 401) {
        text += " (paste a ServiceAccount token for this service's audience into Token)";
      }
    }
    $("error").textContent = text;
  }

  function say(text) {
    $("status").textContent = text;
  }

  function cells(row, ...texts) {
    for (const text of texts) row.insertCell().textContent = String(text);
  }

  function heading(row, text) {
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = text;
    row.append(th);
  }

  function option(select, value, text, selected) {
    const item = new Option(text, value, selected, selected);
    select.append(item);
    return item;
  }

  const lexiconsOf = (policy) =>
    (policy.lexicons || []).map((l) => `${l.name} (version ${l.version.slice(0, 12)})`).join(", ");

  async function loadPolicies() {
    const listing = await (await call("/policies")).json();
    const rows = $("policies").tBodies[0];
    const select = $("policy");
    for (const policy of listing.policies) {
      const key = `${policy.namespace}/${policy.name}`;
      policies.set(key, policy);
      const row = rows.insertRow();
      heading(row, policy.default ? `${key} (default)` : key);
      const ready = policy.ready ? "Ready" : `Not ready: ${policy.reason} ${policy.message || ""}`;
      cells(row, policy.retention || "", ready, lexiconsOf(policy) || "none");
      option(select, key, policy.default ? `${key} (default)` : key, policy.default)
        .disabled = !policy.ready;
    }
    showLexicons();
  }

  function showLexicons() {
    const policy = policies.get($("policy").value);
    const names = policy ? lexiconsOf(policy) : "";
    $("policy-lexicons").textContent = names
      ? `This policy says text with its lexicons: ${names}.`
      : "This policy says text without lexicons.";
  }

  async function loadVoices() {
    const listing = await (await call("/voices")).json();
    const rows = $("voices").tBodies[0];
    for (const voice of listing.voices) {
      voices.set(voice.name, voice);
      const row = rows.insertRow();
      heading(row, voice.name);
      cells(row, voice.language || "", `${voice.sample_rate} Hz`, voice.num_speakers,
            voice.word_timings ? "yes" : "no");
      option($("voice"), voice.name, voice.name, voice.name === listing.default);
    }
  }

  function loadFormats() {
    for (const [name, type] of Object.entries(PLAYABLE)) {
      if ($("audio").canPlayType(type)) option($("format"), name, name, name === "wav");
    }
  }

  async function loadMarks(answer, policy) {
    const path = `/tts/${encodeURIComponent(answer.date)}/${encodeURIComponent(answer.audio_id)}`
      + `/speech-marks?policy=${encodeURIComponent(policy || answer.policy)}`;
    const lines = (await (await call(path, { headers: headers(false) })).text()).split("\n");
    return lines.filter((line) => line.trim()).map((line) => JSON.parse(line))
      .filter((mark) => mark.type === "word");
  }

  // The text as sent (an SSML document with its tags, as written), each marked word in a
  // span of its own: marks' start and end count code points into exactly this text.
  function render(text) {
    const shown = $("spoken");
    const points = Array.from(text);
    let at = 0;
    shown.replaceChildren();
    spans = marks.map((mark) => {
      if (mark.start < at || mark.end <= mark.start || mark.end > points.length) return null;
      shown.append(points.slice(at, mark.start).join(""));
      const span = document.createElement("span");
      span.className = "word";
      span.textContent = points.slice(mark.start, mark.end).join("");
      shown.append(span);
      at = mark.end;
      return span;
    });
    shown.append(points.slice(at).join(""));
  }

  function highlight() {
    const ms = $("audio").currentTime * 1000;
    let index = -1;
    while (index + 1 < marks.length && marks[index + 1].time <= ms) index += 1;
    const span = index >= 0 ? spans[index] : null;
    if (span === current) return;
    current?.classList.remove("speaking");
    span?.classList.add("speaking");
    current = span;
  }

  function tick() {
    highlight();
    if (!$("audio").paused) frame = requestAnimationFrame(tick);
  }

  function stopHighlight() {
    cancelAnimationFrame(frame);
    current?.classList.remove("speaking");
    current = null;
  }

  function showTime(element, iso) {
    element.dateTime = iso;
    element.textContent = `${new Date(iso).toLocaleString()} (${iso})`;
  }

  function showAnswer(answer) {
    $("result").hidden = false;
    $("audio-id").textContent = `${answer.date}/${answer.audio_id}, policy ${answer.policy}`;
    $("duration").textContent = `${answer.duration.toFixed(3)} s of ${answer.format}`
      + (answer.cached ? " (a repeat: the same audio, copied)" : "");
    showTime($("url-expires"), answer.expires_at);
    showTime($("audio-expires"), answer.audio_expires_at);
    $("url").href = answer.s3_url;
  }

  async function speak(event) {
    event.preventDefault();
    const text = $("text").value;
    const policy = $("policy").value;
    const body = {
      text,
      voice: $("voice").value,
      response_format: $("format").value,
      text_type: $("text-type").value,
    };
    if (policy) body.policy = policy;
    if (voices.get(body.voice)?.word_timings) body.speech_marks = ["word"];
    $("error").textContent = "";
    $("speak").disabled = true;
    say("Speaking…");
    stopHighlight();
    try {
      const options = { method: "POST", headers: headers(true), body: JSON.stringify(body) };
      const answer = await (await call("/tts/sync", options)).json();
      marks = answer.speech_marks_url ? await loadMarks(answer, policy) : [];
      render(text);
      showAnswer(answer);
      $("audio").src = answer.s3_url;
      say("Playing.");
      await $("audio").play().catch(() => say("Ready: press play."));
    } catch (error) {
      say("");
      showError(error);
    } finally {
      $("speak").disabled = false;
    }
  }

  async function start() {
    loadFormats();
    $("speak-form").addEventListener("submit", speak);
    // The token is outside the form (no password is ever submitted to be saved); Enter in
    // it speaks as Enter in the form does.
    $("token").addEventListener("keydown", (event) => {
      if (event.key === "Enter") $("speak-form").requestSubmit();
    });
    $("policy").addEventListener("change", showLexicons);
    const audio = $("audio");
    audio.addEventListener("play", () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(tick);
    });
    audio.addEventListener("timeupdate", highlight);
    audio.addEventListener("seeked", highlight);
    audio.addEventListener("ended", () => {
      stopHighlight();
      say("Played: press play to hear it again.");
    });
    audio.addEventListener("error", () => {
      showError(new Error(`The audio did not load from its URL (${audio.error?.message || "error"}).`));
    });
    try {
      await Promise.all([loadPolicies(), loadVoices()]);
    } catch (error) {
      showError(error);
    }
  }

  start();
})();
