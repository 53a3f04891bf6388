// Lambda handler (index.handler) for nodejs22.x written by `layerpack wrap` (stdio adapter).
// The program is spawned during init (module load), which ends once it is ready — it and every
// process below it asleep, waiting for input — so its start-up counts in Init Duration; a program
// that cannot start fails init (Stdio.ProgramNotFound / Stdio.ProgramExited). It is kept for the
// life of the execution environment.
// Each event is written to its stdin as one line (JSON.stringify never writes a raw line break);
// it must answer with one line of JSON on stdout. A line that is not JSON, the program exiting,
// or (with --stderr fail) output on stderr while it handles the event throws an error of type
// Stdio.NotJson / Stdio.ProgramExited / Stdio.Stderr; an exited program is started again.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const PROGRAM = "@PROGRAM@";
const ARGS = ["@ARGS@"];
const STDERR_FAILS = "@STDERR_FAILS@";

class StdioError extends Error {
  constructor(type, message) { super(message); this.name = type; }
}

const programPath = PROGRAM.startsWith('/') ? PROGRAM : fileURLToPath(new URL(PROGRAM, import.meta.url));
let current = null;

function start() {
  const proc = spawn(programPath, ARGS, { stdio: ['pipe', 'pipe', 'pipe'] });
  const state = { proc, lines: [], waiter: null, stderr: '', ended: null };
  const finish = (how) => {
    if (state.ended) return;
    state.ended = how;
    if (state.waiter) { const w = state.waiter; state.waiter = null; w.reject(how); }
  };
  createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (line) => {
    if (state.waiter) { const w = state.waiter; state.waiter = null; w.resolve(line); } else state.lines.push(line);
  });
  proc.stderr.on('data', (chunk) => { process.stderr.write(chunk); state.stderr += chunk; });
  proc.stdin.on('error', () => {});  // EPIPE after a crash: reported by 'close'
  proc.on('error', (err) => finish(`could not start ${programPath}: ${err.message}`));
  proc.on('close', (code, signal) => finish(signal ? `killed by signal ${signal}` : `exit status ${code}`));
  return state;
}

function asleep(pid) {  // the program and every process below it sleep (S) right now
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    let stat;
    try { stat = readFileSync(`/proc/${p}/stat`, 'utf8'); } catch { return false; }
    if (stat[stat.lastIndexOf(')') + 2] !== 'S') return false;
    let kids = '';
    try { kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim(); } catch { /* none */ }
    if (kids) queue.push(...kids.split(/\s+/));
  }
  return true;
}

async function ready(state) {  // init: 10 ms steps, at most 9 s (Lambda's init phase lasts 10 s)
  let streak = 0;
  for (let n = 0; n < 900 && !state.ended; n++) {
    if (state.proc.pid && asleep(state.proc.pid)) { if (++streak >= 3) return; } else streak = 0;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (!state.ended) return;  // still busy after 9 s: the first event waits for it
  const notFound = /could not start|exit status 12[67]/.test(state.ended);
  throw new StdioError(notFound ? '@ERR_NOT_FOUND@' : '@ERR_EXITED@',
    `${notFound ? `${programPath} could not be started` : 'the program ended during init'} (${state.ended})` +
    (state.stderr ? `: ${state.stderr}` : ''));
}

function nextLine(state) {
  if (state.lines.length) return Promise.resolve(state.lines.shift());
  if (state.ended) return Promise.reject(state.ended);
  return new Promise((resolve, reject) => { state.waiter = { resolve, reject }; });
}

current = start();
await ready(current);

export const handler = async (event) => {
  if (!current || current.ended) current = start();
  const state = current;
  state.stderr = '';
  let line;
  try {
    const answer = nextLine(state);
    state.proc.stdin.write(JSON.stringify(event === undefined ? null : event) + '\n');
    line = await answer;
  } catch (how) {
    current = null;
    throw new StdioError('@ERR_EXITED@', `the program ended while handling the event (${how})` +
      (state.stderr ? `: ${state.stderr}` : ''));
  }
  await new Promise((resolve) => setImmediate(resolve));  // let stderr written before the line arrive
  let value;
  try {
    value = JSON.parse(line);
  } catch {
    throw new StdioError('@ERR_NOT_JSON@', `the program's answer is not a JSON value: ${line.slice(0, 2048)}` +
      (state.stderr ? ` (stderr: ${state.stderr})` : ''));
  }
  if (STDERR_FAILS && state.stderr) throw new StdioError('@ERR_STDERR@', state.stderr);
  return value;
};
