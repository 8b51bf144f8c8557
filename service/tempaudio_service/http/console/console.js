// The web console: lists the policies and voices, offers the voices the chosen policy allows
// (GET /voices?policy=, asked again when the policy changes), speaks through POST /tts/sync as any
// client does (text longer than one request may say: POST /tts/jobs, followed to its end),
// plays the presigned URL and highlights each word as its speech mark comes due.
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
  // A job is asked about once a second; after a failed look, twice as long each time (or
  // as long as Retry-After says), up to 15 s, and the page gives up after 8 in a row.
  const POLL_MS = 1000;
  const MAX_POLL_MS = 15000;
  const MAX_FAILURES = 8;
  // Times a job is submitted when no answer came back (the same Idempotency-Key each time).
  const SUBMIT_ATTEMPTS = 3;
  const FINISHED = new Set(["completed", "failed", "cancelled"]);
  const policies = new Map();
  // The voices the picker offers, by the names a request under the chosen policy uses.
  const offered = new Map();
  let asked = 0; // the picker's latest listing; an answer to an earlier one is dropped
  // Which route a text takes (GET /console/config); until it is read, every text is sync.
  let config = { max_text_chars: Infinity, jobs: false, max_job_chars: 0 };
  let following = null; // the job being followed, if any
  let marks = []; // the answer's word marks, by time
  let spans = []; // the element of each mark (null: not shown)
  let current = null;
  let frame = 0;

  class Refused extends Error {
    constructor(status, code, message, retryAfter = 0) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter; // seconds, when the service said
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
                        body.message || response.statusText,
                        Number(response.headers.get("Retry-After")) || 0);
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

  const readiness = (voice) => (voice.ready ? "Ready" : `Not ready: ${voice.reason}`);

  // Every voice the service knows (a TempAudioVoice as namespace/name), whatever the policy.
  async function loadVoices() {
    const listing = await (await call("/voices")).json();
    const rows = $("voices").tBodies[0];
    for (const voice of listing.voices) {
      const row = rows.insertRow();
      heading(row, voice.name);
      cells(row, voice.language || "", `${voice.sample_rate} Hz`, voice.num_speakers,
            voice.word_timings ? "yes" : "no", voice.source, readiness(voice));
    }
  }

  // The voices a request under the chosen policy may name: the ones it allows, a declared
  // voice that is not ready listed but not choosable (its reason in its label), the policy's
  // default chosen. ``keep``: the voice chosen stays chosen while it still may be.
  async function loadPicker(keep = false) {
    const ask = ++asked;
    const policy = $("policy").value;
    const chosen = $("voice").value;
    const path = policy ? `/voices?policy=${encodeURIComponent(policy)}` : "/voices";
    let listing;
    try {
      listing = await (await call(path)).json();
    } catch (error) {
      const help = `The policy's voices could not be listed (${described(error)}).`;
      if (ask === asked) fillPicker([], null, help);
      return;
    }
    if (ask !== asked) return;
    // Without a policy a request names no TempAudioVoice (those are a namespace's).
    const named = listing.voices.filter((v) => (policy ? v.allowed : v.source !== "resource"));
    const usable = named.filter((voice) => voice.ready).map((voice) => voice.name);
    let pick = usable.includes(listing.default) ? listing.default : usable[0];
    if (keep && usable.includes(chosen)) pick = chosen;
    const help = policy ? voicesSaid(named, listing.voices.length)
      : "Without a policy: the service's own voices.";
    fillPicker(named, pick, help);
  }

  function fillPicker(named, pick, help) {
    const select = $("voice");
    offered.clear();
    select.replaceChildren();
    for (const voice of named) {
      offered.set(voice.name, voice);
      const label = voice.ready ? voice.name : `${voice.name} (not ready: ${voice.reason})`;
      const item = option(select, voice.name, label, voice.name === pick);
      item.disabled = !voice.ready;
      if (!voice.ready) item.title = `${readiness(voice)}: refused (503 voice_not_ready)`;
    }
    $("policy-voices").textContent = help;
  }

  function voicesSaid(named, total) {
    let text = named.length < total
      ? `This policy allows ${named.length} of the service's ${total} voices.`
      : "This policy allows every voice the service serves.";
    if (!named.length) text = "This policy allows none of the voices the service serves.";
    const waiting = named.filter((voice) => !voice.ready).map((voice) => voice.name);
    if (waiting.length) text += ` Not ready, so not choosable: ${waiting.join(", ")}.`;
    return text;
  }

  function choosePolicy() {
    showLexicons();
    loadPicker().catch(showError);
  }

  async function loadConfig() {
    config = await (await call("/console/config")).json();
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

  // Characters as the service counts them (code points, not UTF-16 units).
  const characters = (text) => Array.from(text).length;

  // Over the sync limit and within the jobs': a job. Otherwise POST /tts/sync, which says
  // when a text is too long.
  function asJob(text) {
    const count = characters(text);
    return config.jobs && count > config.max_text_chars && count <= config.max_job_chars;
  }

  // A random (version 4) UUID. crypto.randomUUID needs a secure context, which a console
  // opened by a plain-http Ingress name is not; getRandomValues works in any.
  function randomKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
            hex.slice(20)].join("-");
  }

  // Worth asking again: no answer at all, or the service is busy or briefly unavailable
  // (never for a queue it does not have).
  const transient = (error) => !(error instanceof Refused)
    || ((error.status >= 500 || error.status === 408) && error.code !== "jobs_unavailable");

  const described = (error) =>
    (error instanceof Refused ? `${error.status} ${error.code}` : error.message);

  const later = (error, delay) =>
    Math.max(Math.min(delay * 2, MAX_POLL_MS), (error.retryAfter || 0) * 1000);

  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  // One key per Speak: a submission whose answer was lost is sent again with it, and the
  // service answers the job the first made rather than making a second.
  async function submitJob(body) {
    const sent = { ...headers(true), "Idempotency-Key": randomKey() };
    const options = { method: "POST", headers: sent, body: JSON.stringify(body) };
    let delay = POLL_MS;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const response = await call("/tts/jobs", options);
        return { location: response.headers.get("Location"), answer: await response.json() };
      } catch (error) {
        if (!transient(error) || attempt >= SUBMIT_ATTEMPTS) throw error;
        say(`The job was not answered (${described(error)}); sending it again.`);
        await sleep(delay);
        delay = later(error, delay);
      }
    }
  }

  // A job followed at its Location; a cancel's answer ends the wait between two looks.
  function watch(location) {
    let wake = () => {};
    return {
      location,
      ended: null,
      pause(ms) {
        return new Promise((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      },
      end(answer) {
        this.ended = answer;
        wake();
      },
    };
  }

  function jobLabel(status, done, total) {
    switch (status) {
      case "queued":
        return `Waiting to synthesize part 1 of ${total}`;
      case "running":
        return `Synthesizing part ${Math.min(done + 1, total)} of ${total}`;
      case "completed":
        return `Synthesized all ${total} parts`;
      case "cancelled":
        return `Cancelled after ${done} of ${total} parts`;
      default:
        return `Failed after ${done} of ${total} parts`;
    }
  }

  function showJob(answer) {
    const { parts_done: done, parts_total: total } = answer.progress;
    const bar = $("job-progress");
    bar.max = Math.max(total, 1);
    bar.value = done;
    $("job-label").textContent = jobLabel(answer.status, done, total);
    $("cancel").hidden = FINISHED.has(answer.status);
    $("job").hidden = false;
  }

  // Look at the job until it ends: completed, failed or cancelled (the answer).
  async function follow(job, first, speaking) {
    let answer = first;
    let delay = POLL_MS;
    let failures = 0;
    for (;;) {
      const latest = job.ended || answer;
      showJob(latest);
      if (FINISHED.has(latest.status)) return latest;
      await job.pause(delay);
      if (job.ended) continue;
      try {
        answer = await (await call(job.location, { headers: headers(false) })).json();
        if (failures) say(speaking);
        delay = POLL_MS;
        failures = 0;
      } catch (error) {
        failures += 1;
        if (!transient(error) || failures >= MAX_FAILURES) throw error;
        delay = later(error, delay);
        say(`No answer about the job (${described(error)}); asking again in `
            + `${Math.round(delay / 1000)} s.`);
      }
    }
  }

  // The job's audio, as POST /tts/sync would have answered it; null when it was cancelled.
  async function speakAsJob(body) {
    const { location, answer } = await submitJob(body);
    const speaking = `Speaking as job ${answer.job_id}: the text is longer than the `
      + `${config.max_text_chars} characters one request may say.`;
    say(speaking);
    const job = watch(location);
    following = job;
    $("cancel").disabled = false;
    let ended;
    try {
      ended = await follow(job, answer, speaking);
    } finally {
      following = null;
      $("cancel").hidden = true;
    }
    if (ended.status === "cancelled") {
      say(`Cancelled: job ${ended.job_id} stopped.`);
      return null;
    }
    if (ended.status === "failed") {
      const error = ended.error || { code: "failed", message: "no reason given" };
      throw new Error(`The job failed (${error.code}): ${error.message}`);
    }
    if (!ended.s3_url) throw new Error(`Job ${ended.job_id} completed, but its audio has expired.`);
    return ended;
  }

  async function cancelJob() {
    const job = following;
    if (!job) return;
    $("cancel").disabled = true;
    say("Cancelling…");
    try {
      const options = { method: "DELETE", headers: headers(false) };
      job.end(await (await call(job.location, options)).json());
    } catch (error) {
      if (error instanceof Refused && error.code === "job_conflict") {
        say("Too late to cancel: the job is being finished.");
        return;
      }
      $("cancel").disabled = false;
      showError(error);
    }
  }

  async function speakNow(body) {
    const options = { method: "POST", headers: headers(true), body: JSON.stringify(body) };
    return (await call("/tts/sync", options)).json();
  }

  async function play(answer, text, policy) {
    marks = answer.speech_marks_url ? await loadMarks(answer, policy) : [];
    render(text);
    showAnswer(answer);
    $("audio").src = answer.s3_url;
    say("Playing.");
    await $("audio").play().catch(() => say("Ready: press play."));
  }

  async function speak(event) {
    event.preventDefault();
    if (following) return; // Enter in the token field submits even while a job runs
    const text = $("text").value;
    const policy = $("policy").value;
    const body = {
      text,
      response_format: $("format").value,
      text_type: $("text-type").value,
    };
    // No voice to choose: the service says why (the policy's default refused, say).
    if ($("voice").value) body.voice = $("voice").value;
    if (policy) body.policy = policy;
    if (offered.get(body.voice)?.word_timings) body.speech_marks = ["word"];
    $("error").textContent = "";
    $("speak").disabled = true;
    $("job").hidden = true;
    say("Speaking…");
    stopHighlight();
    try {
      const answer = asJob(text) ? await speakAsJob(body) : await speakNow(body);
      if (answer) await play(answer, text, policy);
    } catch (error) {
      say("");
      showError(error);
      // The voice's readiness or the policy's list changed since the picker was filled.
      if (error instanceof Refused && error.code.startsWith("voice_not_")) loadPicker(true);
    } finally {
      $("speak").disabled = false;
    }
  }

  async function start() {
    loadFormats();
    $("speak-form").addEventListener("submit", speak);
    $("cancel").addEventListener("click", cancelJob);
    // The token is outside the form (no password is ever submitted to be saved); Enter in
    // it speaks as Enter in the form does.
    $("token").addEventListener("keydown", (event) => {
      if (event.key === "Enter") $("speak-form").requestSubmit();
    });
    $("policy").addEventListener("change", choosePolicy);
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
      // The policies first: the service learns its declared voices with them.
      await Promise.all([loadPolicies().then(() => Promise.all([loadPicker(), loadVoices()])),
                         loadConfig()]);
    } catch (error) {
      showError(error);
    }
  }

  start();
})();
