/* Browser voice widget: talk to the assistant from any web page.
 *
 * Embed with one tag (see docs/browser-protocol.md):
 *   <script src="https://bot.example.com/webhooks/browser_voice/widget.js" async></script>
 * Optional attributes: data-server (channel URL; default: where this script came from),
 * data-token (JWT when the server requires one), data-title, data-mode ("hands_free" or
 * "push_to_talk"), data-language ("en"), data-target (CSS selector to mount inline instead of
 * the floating button; the page mounts into any element with [data-browser-voice]).
 *
 * Vanilla JS, no build step. Sections: utilities, Player (gapless bot audio), Mic (AudioWorklet
 * capture at 16 kHz), Widget (protocol, UI, state).
 */
(() => {
  "use strict";

  const PROTOCOL = 1;
  const FATAL_CLOSE = new Set([4400, 4401, 4403, 4409, 4413, 4429]);
  const SPEECH_RMS = 0.015; // client-side loudness threshold, only for timings and the meter
  const script = document.currentScript;

  // ---------------------------------------------------------------- utilities

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v == null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  };

  const svg = (path) => {
    const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("focusable", "false");
    s.innerHTML = path;
    return s;
  };

  const ICONS = {
    mic: '<path d="M12 15a3.5 3.5 0 0 0 3.5-3.5v-6a3.5 3.5 0 1 0-7 0v6A3.5 3.5 0 0 0 12 15Z" fill="currentColor"/><path d="M18.5 11.5a6.5 6.5 0 0 1-13 0M12 18v3.2M8.5 21.2h7" stroke="currentColor" stroke-width="1.9" stroke-linecap="round" fill="none"/>',
    micOff: '<path d="M15.5 10.6V5.5a3.5 3.5 0 0 0-6.9-.9M8.5 8.6v2.9a3.5 3.5 0 0 0 5.6 2.8M18.5 11.5a6.5 6.5 0 0 1-1.1 3.6M5.5 11.5a6.5 6.5 0 0 0 10 5.5M12 18v3.2M8.5 21.2h7M3.5 3.5l17 17" stroke="currentColor" stroke-width="1.9" stroke-linecap="round" fill="none"/>',
    stop: '<rect x="6.5" y="6.5" width="11" height="11" rx="2.2" fill="currentColor"/>',
    send: '<path d="M4.5 12 19.5 4.8l-4.2 14.7-3.4-5.9Z" fill="currentColor"/><path d="m11.9 13.6 7.6-8.8" stroke="var(--bv-on-accent)" stroke-width="1.4"/>',
    reset: '<path d="M4.8 12a7.2 7.2 0 1 0 2.1-5.1M4.5 4.2v3.6h3.6" stroke="currentColor" stroke-width="1.9" stroke-linecap="round" stroke-linejoin="round" fill="none"/>',
    chat: '<path d="M12 3.2c5 0 9 3.4 9 7.7s-4 7.7-9 7.7c-1 0-2-.1-2.9-.4L4.6 20l1.2-3.6C4 15 3 13 3 10.9 3 6.6 7 3.2 12 3.2Z" fill="currentColor"/>',
    close: '<path d="m6.5 6.5 11 11m0-11-11 11" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  };

  const newSessionId = () =>
    (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now()).replace(/-/g, "");

  const reducedMotion = () => window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches;

  const timezone = () => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
    } catch (e) {
      return null;
    }
  };

  const store = {
    get(k) {
      try {
        return localStorage.getItem(k);
      } catch (e) {
        return null;
      }
    },
    set(k, v) {
      try {
        localStorage.setItem(k, v);
      } catch (e) {
        /* private mode: the session lasts as long as the page */
      }
    },
  };

  // ---------------------------------------------------------------- Player

  /** Plays streamed PCM16 segments back to back, without gaps; stops at once on clear(). */
  class Player {
    constructor(ctx, onSegmentDone) {
      this.ctx = ctx;
      this.onSegmentDone = onSegmentDone; // (id, cleared) => void
      this.gain = ctx.createGain();
      this.analyser = ctx.createAnalyser();
      this.analyser.fftSize = 512;
      this.gain.connect(this.analyser);
      this.analyser.connect(ctx.destination);
      this.levelBuf = new Float32Array(this.analyser.fftSize);
      this.sources = new Set();
      this.segments = new Map();
      this.current = null;
      this.nextTime = 0;
      this.samplesPlayed = 0;
      this.segmentsPlayed = 0;
      this.segmentsCleared = 0;
      this.dropUntilUserTurn = false;
      this.onFirstAudio = null; // (performanceTimeMs) => void, fired once per bot reply
    }

    get playing() {
      return this.sources.size > 0;
    }

    begin(id, rate) {
      const seg = { id, rate, pending: 0, ended: false, reported: false, cleared: this.dropUntilUserTurn };
      this.segments.set(id, seg);
      this.current = seg;
    }

    push(bytes) {
      const seg = this.current;
      if (!seg || seg.cleared) return;
      const pcm = new Int16Array(bytes, 0, bytes.byteLength >> 1);
      if (pcm.length === 0) return;
      const buffer = this.ctx.createBuffer(1, pcm.length, seg.rate);
      const data = buffer.getChannelData(0);
      for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
      const src = this.ctx.createBufferSource();
      src.buffer = buffer;
      src.connect(this.gain);
      const now = this.ctx.currentTime;
      const fresh = this.nextTime < now + 0.01;
      const at = fresh ? now + 0.04 : this.nextTime; // 40 ms cushion after an underrun
      src.start(at);
      this.nextTime = at + buffer.duration;
      if (this.onFirstAudio) {
        const cb = this.onFirstAudio;
        this.onFirstAudio = null;
        cb(performance.now() + (at - now) * 1000);
      }
      seg.pending++;
      this.sources.add(src);
      src.onended = () => {
        this.sources.delete(src);
        seg.pending--;
        if (!src.stoppedEarly) this.samplesPlayed += pcm.length;
        this.settle(seg);
      };
    }

    end(id) {
      const seg = this.segments.get(id);
      if (!seg) return;
      seg.ended = true;
      if (this.current === seg) this.current = null;
      this.settle(seg);
    }

    settle(seg) {
      if (seg.reported || !seg.ended || seg.pending > 0) return;
      seg.reported = true;
      this.segments.delete(seg.id);
      if (seg.cleared) this.segmentsCleared++;
      else this.segmentsPlayed++;
      this.onSegmentDone(seg.id, seg.cleared);
    }

    /** Stops everything now; every segment still open is reported as cleared. */
    clear() {
      for (const src of this.sources) {
        src.stoppedEarly = true;
        try {
          src.stop();
        } catch (e) {
          /* not started yet */
        }
      }
      this.nextTime = 0;
      for (const seg of this.segments.values()) {
        seg.cleared = true;
        seg.pending = 0;
        this.settle(seg);
      }
      this.sources.clear();
    }

    level() {
      if (!this.playing) return 0;
      this.analyser.getFloatTimeDomainData(this.levelBuf);
      let s = 0;
      for (const v of this.levelBuf) s += v * v;
      return Math.sqrt(s / this.levelBuf.length);
    }
  }

  // ---------------------------------------------------------------- Mic

  /** Captures the microphone in an AudioWorklet as 20 ms frames of 16 kHz PCM16. */
  class Mic {
    constructor(ctx, workletUrl, onFrame) {
      this.ctx = ctx;
      this.workletUrl = workletUrl;
      this.onFrame = onFrame; // (ArrayBuffer pcm, number rms) => void
      this.stream = null;
      this.node = null;
    }

    async start() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        const err = new Error("This browser cannot use a microphone here (it needs HTTPS).");
        err.name = "NotSupportedError";
        throw err;
      }
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
      await this.ctx.audioWorklet.addModule(this.workletUrl);
      const source = this.ctx.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.ctx, "browser-voice-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        channelCount: 1,
        channelCountMode: "explicit",
        channelInterpretation: "speakers",
      });
      this.node.port.onmessage = (e) => this.onFrame(e.data.pcm, e.data.rms);
      const sink = this.ctx.createGain();
      sink.gain.value = 0; // keeps the node pulled by the graph without playing the mic back
      source.connect(this.node).connect(sink).connect(this.ctx.destination);
    }

    set enabled(on) {
      if (this.stream) for (const t of this.stream.getAudioTracks()) t.enabled = on;
    }

    stop() {
      if (this.node) this.node.port.postMessage("stop");
      if (this.stream) for (const t of this.stream.getTracks()) t.stop();
      this.stream = null;
      this.node = null;
    }
  }

  // ---------------------------------------------------------------- Widget

  const LABELS = {
    idle: "Tap the microphone to talk",
    connecting: "Connecting…",
    listening: "Listening — just talk",
    ptt: "Hold the button or the space bar to talk",
    hearing: "Hearing you…",
    thinking: "Thinking…",
    speaking: "Speaking",
    muted: "Muted",
    textonly: "Type a message below",
    disconnected: "Disconnected",
    ended: "Conversation ended",
  };
  const STATUS = {
    idle: "Ready",
    connecting: "Connecting",
    listening: "Listening",
    ptt: "Push to talk",
    hearing: "Hearing you",
    thinking: "Thinking",
    speaking: "Speaking",
    muted: "Muted",
    textonly: "Text only",
    disconnected: "Offline",
    ended: "Ended",
  };

  class Widget {
    constructor(host, opts) {
      this.opts = opts;
      this.base = opts.base;
      this.storageKey = "browserVoice.session:" + this.base;
      this.sessionId = store.get(this.storageKey) || newSessionId();
      store.set(this.storageKey, this.sessionId);
      this.mode = opts.mode || store.get("browserVoice.mode") || "hands_free";
      this.ws = null;
      this.ready = false;
      this.started = false;
      this.everReady = false;
      this.ended = false;
      this.fatal = null;
      this.retry = 0;
      this.retryTimer = null;
      this.retryAt = 0;
      this.greetNext = true;
      this.ctx = null;
      this.player = null;
      this.mic = null;
      this.micState = "off"; // off | starting | on | denied | unavailable
      this.muted = false;
      this.pttHeld = false;
      this.pttTailUntil = 0;
      this.userSpeaking = false;
      this.awaitingReply = false;
      this.pendingTexts = [];
      this.partialItem = null;
      this.turn = null;
      this.loud = false;
      this.lastLoudAt = 0;
      this.quietSince = 0;
      this.onsets = [];
      this.history = new Array(64).fill(0);
      this.historyWho = new Array(64).fill("mic");
      this.lastHistoryAt = 0;
      this.outputRate = 24000;
      this.stats = {
        framesSent: 0,
        framesDropped: 0,
        audioBytesReceived: 0,
        transcripts: [],
        botTexts: [],
        turns: [],
        clears: [],
        errors: [],
        lastClose: null,
        metrics: [],
      };
      this.build(host);
      this.render();
    }

    // ------------------------------------------------------------ DOM

    build(host) {
      const root = host.shadowRoot || host.attachShadow({ mode: "open" });
      this.root = root;
      const layout = this.opts.layout;
      root.append(el("link", { rel: "stylesheet", href: new URL("style.css", this.base).href }));

      this.statusText = el("span", { class: "bv-status-text", text: "Ready" });
      this.orbIcon = el("span", { class: "bv-orb-icon" }, svg(ICONS.mic));
      this.orb = el(
        "button",
        { class: "bv-orb", type: "button", "aria-label": "Start talking", "aria-describedby": "bv-label" },
        this.orbIcon
      );
      this.wave = el("canvas", { class: "bv-wave", width: 320, height: 56, "aria-hidden": "true" });
      this.label = el("p", { class: "bv-label", id: "bv-label", text: LABELS.idle });
      this.stopBtn = el(
        "button",
        { class: "bv-btn bv-stop", type: "button", disabled: true, title: "Stop the assistant talking (Esc)" },
        svg(ICONS.stop),
        el("span", { text: "Stop" })
      );
      this.muteBtn = el(
        "button",
        { class: "bv-btn bv-mute", type: "button", "aria-pressed": "false", disabled: true },
        svg(ICONS.micOff),
        el("span", { text: "Mute" })
      );
      this.modeHands = el("button", { class: "bv-seg", type: "button", "aria-pressed": "true", text: "Hands-free" });
      this.modePtt = el("button", { class: "bv-seg", type: "button", "aria-pressed": "false", text: "Push to talk" });
      this.resetBtn = el(
        "button",
        { class: "bv-btn bv-reset", type: "button", title: "Start a new conversation" },
        svg(ICONS.reset),
        el("span", { text: "New chat" })
      );
      this.notice = el("div", { class: "bv-notice", role: "alert", hidden: true });
      this.log = el("ol", { class: "bv-log", role: "log", "aria-label": "Conversation", "aria-live": "polite" });
      this.empty = el(
        "li",
        { class: "bv-empty" },
        el("strong", { text: "Ask me anything — out loud." }),
        el("span", { text: "“What time is it in Tokyo?” · “Will it rain in Berlin tomorrow?” · “Remind me to call mom at six.”" })
      );
      this.log.append(this.empty);
      this.input = el("input", {
        class: "bv-input",
        type: "text",
        id: "bv-input",
        autocomplete: "off",
        enterkeyhint: "send",
        maxlength: "1000",
        placeholder: "Type a message…",
      });
      this.sendBtn = el("button", { class: "bv-send", type: "submit", "aria-label": "Send" }, svg(ICONS.send));
      this.form = el(
        "form",
        { class: "bv-compose" },
        el("label", { class: "bv-sr", for: "bv-input", text: "Message" }),
        this.input,
        this.sendBtn
      );

      const head = el(
        "header",
        { class: "bv-head" },
        el(
          "div",
          { class: "bv-brand" },
          el("span", { class: "bv-logo", "aria-hidden": "true" }, svg(ICONS.chat)),
          el("h2", { class: "bv-title", text: this.opts.title })
        ),
        el(
          "div",
          { class: "bv-status", role: "status" },
          el("span", { class: "bv-dot", "aria-hidden": "true" }),
          this.statusText
        )
      );
      if (layout === "float") {
        head.append(
          el(
            "button",
            { class: "bv-icon-btn bv-close", type: "button", "aria-label": "Close", onclick: () => this.toggleOpen(false) },
            svg(ICONS.close)
          )
        );
      }
      const stage = el(
        "section",
        { class: "bv-stage", "aria-label": "Voice" },
        el(
          "div",
          { class: "bv-orb-wrap" },
          el("span", { class: "bv-orb-ring bv-orb-ring2", "aria-hidden": "true" }),
          el("span", { class: "bv-orb-ring", "aria-hidden": "true" }),
          this.orb
        ),
        this.label,
        this.wave,
        el(
          "div",
          { class: "bv-controls" },
          el("div", { class: "bv-segs", role: "group", "aria-label": "Talk mode" }, this.modeHands, this.modePtt),
          el("div", { class: "bv-row" }, this.muteBtn, this.stopBtn, this.resetBtn)
        )
      );
      const convo = el("section", { class: "bv-convo", "aria-label": "Conversation" }, this.notice, this.log, this.form);
      this.panel = el(
        "div",
        { class: `bv bv-${layout}`, "data-state": "idle", "data-mode": this.mode, role: "region", "aria-label": this.opts.title },
        head,
        el("div", { class: "bv-body" }, stage, convo)
      );
      if (layout === "float") {
        this.launcher = el(
          "button",
          { class: "bv-launcher", type: "button", "aria-label": `Open ${this.opts.title}`, "aria-expanded": "false", onclick: () => this.toggleOpen() },
          svg(ICONS.mic)
        );
        this.panel.hidden = true;
        root.append(this.launcher);
      }
      root.append(this.panel);

      this.orb.addEventListener("click", () => this.onOrbClick());
      this.orb.addEventListener("pointerdown", (e) => {
        if (this.mode !== "push_to_talk" || e.button !== 0) return;
        e.preventDefault();
        this.orb.setPointerCapture && this.orb.setPointerCapture(e.pointerId);
        this.pttDown();
      });
      for (const t of ["pointerup", "pointercancel", "lostpointercapture"]) {
        this.orb.addEventListener(t, () => this.pttUp());
      }
      this.stopBtn.addEventListener("click", () => this.stopSpeaking());
      this.muteBtn.addEventListener("click", () => this.setMuted(!this.muted));
      this.modeHands.addEventListener("click", () => this.setMode("hands_free"));
      this.modePtt.addEventListener("click", () => this.setMode("push_to_talk"));
      this.resetBtn.addEventListener("click", () => this.resetConversation());
      this.form.addEventListener("submit", (e) => {
        e.preventDefault();
        this.sendText(this.input.value);
      });
      document.addEventListener("keydown", (e) => this.onKey(e, true));
      document.addEventListener("keyup", (e) => this.onKey(e, false));
      document.addEventListener("visibilitychange", () => this.render());
    }

    toggleOpen(open) {
      const show = open === undefined ? this.panel.hidden : open;
      this.panel.hidden = !show;
      this.launcher.setAttribute("aria-expanded", String(show));
      this.launcher.hidden = show;
      if (show) this.orb.focus();
      else this.launcher.focus();
    }

    onKey(e, down) {
      const target = e.composedPath()[0];
      const typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable);
      if (e.key === "Escape" && down && this.player && this.player.playing) {
        this.stopSpeaking();
        return;
      }
      if (e.code !== "Space" || typing || this.mode !== "push_to_talk" || !this.started) return;
      if (this.panel.hidden) return;
      e.preventDefault();
      if (down && !e.repeat) this.pttDown();
      else if (!down) this.pttUp();
    }

    // ------------------------------------------------------------ state

    get state() {
      if (this.ended) return "ended";
      if (!this.started) return "idle";
      if (!this.ready) return this.everReady || this.fatal ? "disconnected" : "connecting";
      if (this.player && this.player.playing) return "speaking";
      if (this.userSpeaking || this.pttHeld) return "hearing";
      if (this.awaitingReply) return "thinking";
      if (this.micState !== "on") return "textonly";
      if (this.muted) return "muted";
      return this.mode === "push_to_talk" ? "ptt" : "listening";
    }

    render() {
      const state = this.state;
      const p = this.panel;
      if (p.dataset.state !== state) p.dataset.state = state;
      p.dataset.mode = this.mode;
      let label = LABELS[state];
      if (state === "disconnected") {
        if (this.fatal) label = "Can’t connect to the assistant";
        else if (this.retryAt) label = `Disconnected — reconnecting in ${Math.max(1, Math.ceil((this.retryAt - Date.now()) / 1000))} s`;
      }
      if (state === "ended") label = "Conversation ended — tap the microphone to start again";
      if (this.label.textContent !== label) this.label.textContent = label;
      if (this.statusText.textContent !== STATUS[state]) this.statusText.textContent = STATUS[state];
      const micLive = this.micState === "on";
      const orbLabel =
        this.mode === "push_to_talk" && micLive
          ? "Hold to talk"
          : !micLive
          ? "Start talking"
          : this.muted
          ? "Unmute microphone"
          : "Mute microphone";
      if (this.orb.getAttribute("aria-label") !== orbLabel) this.orb.setAttribute("aria-label", orbLabel);
      this.orb.setAttribute("aria-pressed", String(this.mode === "push_to_talk" ? this.pttHeld : micLive && !this.muted));
      const icon = micLive && this.muted ? "micOff" : "mic";
      if (this.orbIcon.dataset.icon !== icon) {
        this.orbIcon.dataset.icon = icon;
        this.orbIcon.replaceChildren(svg(ICONS[icon]));
      }
      this.stopBtn.disabled = !(this.player && this.player.playing);
      this.muteBtn.disabled = !micLive || this.mode === "push_to_talk";
      this.muteBtn.setAttribute("aria-pressed", String(this.muted));
      this.muteBtn.lastChild.textContent = this.muted ? "Unmute" : "Mute";
      this.modeHands.setAttribute("aria-pressed", String(this.mode === "hands_free"));
      this.modePtt.setAttribute("aria-pressed", String(this.mode === "push_to_talk"));
      this.resetBtn.disabled = !this.started;
    }

    showNotice(text, kind = "warn") {
      this.notice.textContent = text;
      this.notice.dataset.kind = kind;
      this.notice.hidden = !text;
    }

    // ------------------------------------------------------------ start, mic, audio

    ensureAudio() {
      if (!this.ctx) {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        this.ctx = new Ctx({ latencyHint: "interactive" });
        this.player = new Player(this.ctx, (id, cleared) => {
          this.send({ type: "playback_done", id, cleared });
          this.render();
        });
      }
      if (this.ctx.state === "suspended") this.ctx.resume();
    }

    async onOrbClick() {
      if (this.mode === "push_to_talk" && this.micState === "on") return; // handled by pointer events
      if (this.ended) {
        this.ended = false;
        this.greetNext = true;
      }
      this.ensureAudio();
      this.begin();
      if (this.micState === "on") this.setMuted(!this.muted);
      else await this.startMic();
    }

    begin() {
      if (!this.started || (!this.ws && !this.retryTimer)) {
        this.started = true;
        this.fatal = null;
        this.connect();
        this.loop();
      }
      this.render();
    }

    async startMic() {
      if (this.micState === "starting") return;
      this.micState = "starting";
      this.render();
      try {
        this.mic = new Mic(this.ctx, new URL("capture-worklet.js", this.base).href, (pcm, rms) => this.onFrame(pcm, rms));
        await this.mic.start();
        this.micState = "on";
        this.muted = false;
        this.showNotice("");
      } catch (err) {
        this.mic = null;
        const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
        this.micState = denied ? "denied" : "unavailable";
        this.showNotice(
          denied
            ? "Microphone access is blocked. You can still type below — or allow the microphone in your browser’s site settings and tap the mic again."
            : err && err.name === "NotFoundError"
            ? "No microphone found. You can still type below."
            : `The microphone could not start (${(err && err.message) || err}). You can still type below.`
        );
        setTimeout(() => this.input.focus(), 0);
      }
      this.render();
    }

    setMuted(muted) {
      if (this.micState !== "on") return;
      this.muted = muted;
      if (this.mic) this.mic.enabled = !muted;
      if (muted) this.userSpeaking = false;
      this.render();
    }

    setMode(mode) {
      if (mode === this.mode) return;
      this.mode = mode;
      store.set("browserVoice.mode", mode);
      this.pttHeld = false;
      if (mode === "push_to_talk") this.muted = false;
      if (this.mic) this.mic.enabled = true;
      if (this.started && this.ws) {
        // The mode is part of the hello: reconnect into the same conversation.
        this.greetNext = false;
        this.reconnectNow();
      }
      this.render();
    }

    onFrame(pcm, rms) {
      const now = performance.now();
      const sending =
        this.ready &&
        this.micState === "on" &&
        !this.muted &&
        (this.mode === "hands_free" || this.pttHeld || now < this.pttTailUntil);
      // client-side loudness: drives the meter and the latency timings, never the turns
      const hearing = this.micState === "on" && !this.muted;
      if (hearing && rms > SPEECH_RMS) {
        if (!this.loud && now - this.quietSince > 300) this.onsets.push(now);
        if (this.onsets.length > 200) this.onsets.shift();
        this.loud = true;
        this.lastLoudAt = now;
      } else if (this.loud && now - this.lastLoudAt > 60) {
        this.loud = false;
        this.quietSince = this.lastLoudAt;
      }
      this.micLevel = this.muted ? 0 : rms;
      if (!sending) return;
      if (this.ws.bufferedAmount > 64000) {
        this.stats.framesDropped++;
        return;
      }
      this.ws.send(pcm);
      this.stats.framesSent++;
    }

    pttDown() {
      if (this.pttHeld || this.micState !== "on" || !this.ready) return;
      this.pttHeld = true;
      this.interruptLocally();
      this.send({ type: "ptt_start" });
      this.render();
    }

    pttUp() {
      if (!this.pttHeld) return;
      this.pttHeld = false;
      this.pttTailUntil = performance.now() + 120; // words trail off after the key is released
      setTimeout(() => {
        this.send({ type: "ptt_end" });
        this.markUserTurnEnd("voice", this.lastLoudAt || performance.now());
        this.awaitingReply = true;
        this.render();
      }, 130);
      this.render();
    }

    /** The user stops the bot: audio stops now; the rest of this reply is skipped. */
    stopSpeaking() {
      if (!this.player) return;
      this.player.dropUntilUserTurn = true;
      this.player.clear();
      this.render();
    }

    interruptLocally() {
      if (this.player) {
        this.player.dropUntilUserTurn = false;
        if (this.player.playing) this.player.clear();
      }
    }

    // ------------------------------------------------------------ connection

    wsUrl() {
      const u = new URL("websocket", this.base);
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
      return u.href;
    }

    connect() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.retryAt = 0;
      const ws = new WebSocket(this.wsUrl());
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.onopen = () => {
        ws.send(
          JSON.stringify({
            type: "hello",
            protocol: PROTOCOL,
            session_id: this.sessionId,
            timezone: timezone(),
            language: this.opts.language,
            mode: this.mode,
            greet: this.greetNext,
            output_sample_rate: 24000,
            token: this.opts.token || undefined,
          })
        );
      };
      ws.onmessage = (e) => {
        if (ws !== this.ws) return;
        if (typeof e.data === "string") {
          let msg;
          try {
            msg = JSON.parse(e.data);
          } catch (err) {
            return;
          }
          this.onEvent(msg);
        } else {
          this.stats.audioBytesReceived += e.data.byteLength;
          if (this.player) this.player.push(e.data);
        }
        this.render();
      };
      ws.onclose = (e) => {
        if (ws !== this.ws) return;
        this.ws = null;
        this.ready = false;
        this.userSpeaking = false;
        this.awaitingReply = false;
        this.pttHeld = false;
        this.stats.lastClose = { code: e.code, reason: e.reason };
        if (this.player) this.player.clear();
        if (this.ended || !this.started) {
          this.render();
          return;
        }
        if (FATAL_CLOSE.has(e.code)) {
          this.fatal = this.fatal || `Disconnected (${e.reason || e.code})`;
          this.render();
          return;
        }
        const delay = Math.min(15000, 500 * 2 ** this.retry) * (0.8 + Math.random() * 0.4);
        this.retry++;
        this.retryAt = Date.now() + delay;
        this.greetNext = false;
        this.retryTimer = setTimeout(() => this.connect(), delay);
        this.render();
      };
    }

    reconnectNow() {
      const ws = this.ws;
      this.ws = null;
      this.ready = false;
      if (ws) ws.close(1000, "reconnect");
      this.connect();
    }

    send(msg) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify(msg));
        return true;
      }
      return false;
    }

    onEvent(msg) {
      switch (msg.type) {
        case "ready":
          this.ready = true;
          this.everReady = true;
          this.retry = 0;
          this.fatal = null;
          this.outputRate = (msg.output && msg.output.sample_rate) || this.outputRate;
          if (msg.session_id && msg.session_id !== this.sessionId) {
            this.sessionId = msg.session_id;
            store.set(this.storageKey, this.sessionId);
          }
          this.greetNext = false;
          if (this.notice.dataset.kind === "net") this.showNotice("");
          for (const t of this.pendingTexts.splice(0)) this.sendText(t);
          break;
        case "vad":
          if (isSpeechStart(msg)) {
            this.userSpeaking = true;
            if (this.player) this.player.dropUntilUserTurn = false;
          } else if (isSpeechEnd(msg)) {
            this.userSpeaking = false;
            this.awaitingReply = true;
            this.markUserTurnEnd("voice", this.lastLoudAt || performance.now());
          }
          break;
        case "partial":
          this.showPartial(msg.text || "");
          break;
        case "transcript":
          this.userSpeaking = false;
          this.finishUserText(msg.text || "");
          if (!this.turn || this.turn.kind !== "voice" || this.turn.firstAudioAt || this.turn.transcript) {
            this.markUserTurnEnd("voice", this.lastLoudAt || performance.now());
          }
          this.turn.transcript = msg.text || "";
          this.awaitingReply = true;
          this.stats.transcripts.push(msg.text || "");
          break;
        case "bot_text":
          this.awaitingReply = false;
          this.addBot(msg.text || "");
          this.stats.botTexts.push(msg.text || "");
          break;
        case "audio_start":
          if (this.player) this.player.begin(msg.id, msg.sample_rate || this.outputRate);
          else this.send({ type: "playback_done", id: msg.id, cleared: true });
          break;
        case "audio_end":
          if (this.player) this.player.end(msg.id);
          break;
        case "clear_audio": {
          const t = performance.now();
          const onset = [...this.onsets].reverse().find((o) => o <= t) || null;
          if (this.player) this.player.clear();
          this.stats.clears.push({ at: t, onsetAt: onset });
          break;
        }
        case "turn_metrics":
          this.stats.metrics.push(msg);
          this.attachMetrics(msg);
          break;
        case "state":
          break;
        case "error":
          this.stats.errors.push(msg);
          if (msg.fatal) {
            this.fatal = msg.message || msg.code;
            this.showNotice(`Disconnected: ${msg.message || msg.code}`, "error");
          } else if (msg.code !== "bad_message") {
            this.showNotice(msg.message || msg.code, "warn");
          }
          break;
        case "end":
          this.ended = true;
          this.greetNext = true;
          break;
        default:
          break;
      }
    }

    // ------------------------------------------------------------ conversation log

    scrollLog() {
      const behavior = reducedMotion() ? "auto" : "smooth";
      this.log.scrollTo({ top: this.log.scrollHeight, behavior });
    }

    addItem(who, text, extra = "") {
      if (this.empty.isConnected) this.empty.remove();
      const item = el(
        "li",
        { class: `bv-msg bv-${who} ${extra}` },
        el("span", { class: "bv-sr", text: who === "user" ? "You said: " : "Assistant: " }),
        el("p", { class: "bv-text", text })
      );
      this.log.append(item);
      this.scrollLog();
      return item;
    }

    showPartial(text) {
      if (!text) return;
      if (!this.partialItem) {
        this.partialItem = this.addItem("user", text, "bv-partial");
        this.partialItem.setAttribute("aria-hidden", "true");
      } else {
        this.partialItem.querySelector(".bv-text").textContent = text;
      }
      this.scrollLog();
    }

    finishUserText(text) {
      if (this.partialItem) {
        this.partialItem.remove();
        this.partialItem = null;
      }
      if (text) this.addItem("user", text);
    }

    addBot(text) {
      if (!text) return;
      const item = this.addItem("bot", text);
      if (this.turn && !this.turn.botItem) {
        this.turn.botItem = item;
        this.turn.firstTextAt = performance.now();
        this.updateBadge(this.turn);
      }
    }

    markUserTurnEnd(kind, endAt) {
      const turn = { kind, endAt, firstAudioAt: null, firstTextAt: null, botItem: null, transcript: null, latencyMs: null };
      this.turn = turn;
      this.stats.turns.push(turn);
      if (this.stats.turns.length > 200) this.stats.turns.shift();
      if (this.player) {
        this.player.dropUntilUserTurn = false;
        this.player.onFirstAudio = (at) => {
          turn.firstAudioAt = at;
          turn.latencyMs = Math.max(0, at - turn.endAt);
          this.updateBadge(turn);
        };
      }
    }

    updateBadge(turn) {
      if (!turn.botItem) return;
      let ms = turn.latencyMs;
      if (ms == null && turn.firstTextAt && (!this.ctx || this.ctx.state !== "running")) ms = turn.firstTextAt - turn.endAt;
      if (ms == null) return;
      let badge = turn.botItem.querySelector(".bv-badge");
      if (!badge) {
        badge = el("span", { class: "bv-badge" });
        turn.botItem.append(badge);
      }
      const s = ms / 1000;
      badge.textContent = `replied in ${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
      badge.dataset.speed = s <= 1 ? "fast" : s <= 2 ? "ok" : "slow";
      if (turn.metrics) badge.title = turn.metrics;
    }

    attachMetrics(msg) {
      const parts = [];
      for (const [k, v] of Object.entries(msg)) {
        if (k === "type" || typeof v !== "number") continue;
        parts.push(`${k.replace(/_/g, " ")}: ${v < 100 ? v.toFixed(2) : Math.round(v)}`);
      }
      const turn = this.turn;
      if (turn) {
        turn.metrics = parts.join("\n");
        this.updateBadge(turn);
      }
    }

    sendText(raw) {
      const text = (raw || "").trim();
      if (!text) return;
      this.ensureAudio();
      this.begin();
      if (!this.ready) {
        this.pendingTexts.push(text);
        this.input.value = "";
        return;
      }
      this.interruptLocally();
      if (!this.send({ type: "text", text })) {
        this.pendingTexts.push(text);
        return;
      }
      this.input.value = "";
      this.finishUserText("");
      this.addItem("user", text, "bv-typed");
      this.markUserTurnEnd("text", performance.now());
      this.awaitingReply = true;
      this.render();
    }

    resetConversation() {
      this.interruptLocally();
      this.sessionId = newSessionId();
      store.set(this.storageKey, this.sessionId);
      this.log.replaceChildren(this.empty);
      this.partialItem = null;
      this.turn = null;
      this.awaitingReply = false;
      this.ended = false;
      if (!this.send({ type: "reset", session_id: this.sessionId })) {
        this.greetNext = true;
        if (this.started) this.reconnectNow();
      }
      this.render();
    }

    // ------------------------------------------------------------ meter

    loop() {
      if (this.looping) return;
      this.looping = true;
      const canvas = this.wave;
      const g = canvas.getContext("2d");
      const tick = (ts) => {
        if (!this.started) {
          this.looping = false;
          return;
        }
        requestAnimationFrame(tick);
        if (document.hidden) return;
        const bot = this.player && this.player.playing;
        const level = bot ? this.player.level() : this.micState === "on" && !this.muted ? this.micLevel || 0 : 0;
        const norm = Math.min(1, Math.sqrt(level) * 2.2);
        this.panel.style.setProperty("--bv-level", norm.toFixed(3));
        if (ts - this.lastHistoryAt > 45) {
          this.lastHistoryAt = ts;
          this.history.push(norm);
          this.history.shift();
          this.historyWho.push(bot ? "bot" : "mic");
          this.historyWho.shift();
          this.drawWave(g, canvas);
        }
        this.render();
      };
      requestAnimationFrame(tick);
    }

    drawWave(g, canvas) {
      const dpr = window.devicePixelRatio || 1;
      const w = canvas.clientWidth || 320;
      const h = canvas.clientHeight || 56;
      if (canvas.width !== Math.round(w * dpr)) {
        canvas.width = Math.round(w * dpr);
        canvas.height = Math.round(h * dpr);
      }
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, h);
      const style = getComputedStyle(this.panel);
      const colors = { mic: style.getPropertyValue("--bv-user").trim() || "#0f766e", bot: style.getPropertyValue("--bv-accent").trim() || "#4f46e5" };
      const n = this.history.length;
      const gap = 2;
      const bw = Math.max(1.5, (w - gap * (n - 1)) / n);
      for (let i = 0; i < n; i++) {
        const v = this.history[i];
        const bh = Math.max(2, v * (h - 4));
        g.fillStyle = colors[this.historyWho[i]];
        g.globalAlpha = 0.35 + 0.65 * (i / n);
        const x = i * (bw + gap);
        g.beginPath();
        if (g.roundRect) g.roundRect(x, (h - bh) / 2, bw, bh, bw / 2);
        else g.rect(x, (h - bh) / 2, bw, bh);
        g.fill();
      }
      g.globalAlpha = 1;
    }

    /** Read-only status for tests and benchmarks. */
    status() {
      const p = this.player;
      return {
        state: this.state,
        ready: this.ready,
        sessionId: this.sessionId,
        mode: this.mode,
        micState: this.micState,
        muted: this.muted,
        outputSampleRate: this.outputRate,
        audioContext: this.ctx ? this.ctx.state : null,
        samplesPlayed: p ? p.samplesPlayed : 0,
        segmentsPlayed: p ? p.segmentsPlayed : 0,
        segmentsCleared: p ? p.segmentsCleared : 0,
        playing: !!(p && p.playing),
        loud: this.loud,
        lastLoudAt: this.lastLoudAt,
        now: performance.now(),
        onsets: this.onsets.slice(),
        ...this.stats,
        transcripts: this.stats.transcripts.slice(),
        botTexts: this.stats.botTexts.slice(),
        errors: this.stats.errors.slice(),
        clears: this.stats.clears.slice(),
        metrics: this.stats.metrics.slice(),
        turns: this.stats.turns.map((t) => ({
          kind: t.kind,
          endAt: t.endAt,
          firstAudioAt: t.firstAudioAt,
          firstTextAt: t.firstTextAt,
          latencyMs: t.latencyMs,
          transcript: t.transcript,
        })),
      };
    }
  }

  function isSpeechStart(m) {
    return m.speech === true || m.speaking === true || m.state === "start" || m.state === "speech_start" || m.event === "start" || m.event === "speech_start";
  }

  function isSpeechEnd(m) {
    return m.speech === false || m.speaking === false || m.state === "end" || m.state === "speech_end" || m.event === "end" || m.event === "speech_end";
  }

  // ---------------------------------------------------------------- mount

  function mount() {
    const data = (script && script.dataset) || {};
    const base = new URL(data.server || "./", (script && script.src) || location.href);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    const target = document.querySelector(data.target || "[data-browser-voice]");
    let host = target;
    if (!host) {
      host = document.createElement("div");
      host.className = "browser-voice-host";
      document.body.append(host);
    }
    const widget = new Widget(host, {
      base: base.href,
      layout: target ? "page" : "float",
      title: data.title || (target && target.dataset.title) || "Voice assistant",
      mode: data.mode === "push_to_talk" || data.mode === "hands_free" ? data.mode : null,
      language: data.language || (navigator.language || "en").split("-")[0],
      token: data.token || null,
    });
    window.browserVoice = widget;
    return widget;
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
