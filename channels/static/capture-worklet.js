// Microphone capture for the browser voice widget, run on the audio thread (AudioWorklet).
//
// Takes the context's mono input at its native rate (usually 48 kHz or 44.1 kHz), low-pass
// filters it (windowed-sinc FIR, cutoff just under 8 kHz), resamples it to 16 kHz and posts
// 20 ms frames of PCM16 little-endian to the main thread, with each frame's RMS level.

const TARGET_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz

function lowPassTaps(inputRate, taps) {
  // Windowed-sinc (Blackman) low-pass with its cutoff at 7.2 kHz, normalized to unity gain.
  const cutoff = Math.min(0.45 * TARGET_RATE, 0.45 * inputRate) / inputRate;
  const h = new Float32Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w =
      0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (taps - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.filtering = this.step > 1.0001;
    this.taps = this.filtering ? lowPassTaps(sampleRate, 63) : null;
    this.history = new Float32Array(this.filtering ? this.taps.length : 1);
    this.histPos = 0;
    this.prev = 0; // last filtered input sample
    this.pos = 0; // fractional position of the next output sample, relative to `prev`
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.fill = 0;
    this.sumSquares = 0;
    this.running = true;
    this.port.onmessage = (e) => {
      if (e.data === "stop") this.running = false;
    };
  }

  filter(x) {
    if (!this.filtering) return x;
    const n = this.history.length;
    this.history[this.histPos] = x;
    this.histPos = (this.histPos + 1) % n;
    let acc = 0;
    let j = this.histPos;
    for (let i = 0; i < n; i++) {
      acc += this.taps[i] * this.history[j];
      j = j + 1 === n ? 0 : j + 1;
    }
    return acc;
  }

  emit(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    this.sumSquares += s * s;
    if (this.fill === FRAME_SAMPLES) {
      const rms = Math.sqrt(this.sumSquares / FRAME_SAMPLES);
      const pcm = this.frame.buffer;
      this.port.postMessage({ pcm, rms }, [pcm]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.fill = 0;
      this.sumSquares = 0;
    }
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      const cur = this.filter(ch[i]);
      // Output samples that fall between `prev` (at 0) and `cur` (at 1): linear interpolation.
      while (this.pos <= 1) {
        this.emit(this.prev + (cur - this.prev) * this.pos);
        this.pos += this.step;
      }
      this.pos -= 1;
      this.prev = cur;
    }
    return true;
  }
}

registerProcessor("browser-voice-capture", CaptureProcessor);
