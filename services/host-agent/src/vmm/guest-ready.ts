// Readiness of a guest: waiting until its HTTP port, forwarded by QEMU's
// user-mode network to 127.0.0.1:<hostPort>, answers.
import * as http from 'http';
import { pidAlive } from './qemu-process';

/** GET http://127.0.0.1:port/ once; resolves true on any HTTP answer. */
function httpAnswers(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(true));
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
  });
}

export interface WaitHttpOptions {
  hostPort: number;
  /** The QEMU; waiting stops when it exits. */
  pid: number;
  /** Epoch ms. */
  deadline: number;
  /** Start of the error messages, e.g. "boot of m1". */
  what: string;
  /** Console log named in the error when QEMU exits. */
  consoleFile: string;
}

/**
 * Resolves when the guest's HTTP port answers. Attempts overlap (a new one every
 * 25 ms, each kept up to 2 s): a connection that QEMU's user-mode network opened
 * while the guest was not yet listening waits for slirp's SYN retransmission
 * (seconds), so one attempt at a time would add up to a second to every boot.
 */
export function waitHttp(o: WaitHttpOptions): Promise<void> {
  const { hostPort, pid, deadline, what } = o;
  return new Promise<void>((resolve, reject) => {
    let done = false;
    let inFlight = 0;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      if (err) reject(err);
      else resolve();
    };
    const attempt = () => {
      if (done || inFlight >= 64) return;
      inFlight++;
      httpAnswers(hostPort, 2000).then((ok) => {
        inFlight--;
        if (ok) finish();
      });
    };
    const timer = setInterval(() => {
      if (!pidAlive(pid)) {
        finish(new Error(`${what}: qemu (pid ${pid}) exited before the guest answered HTTP; see ${o.consoleFile}`));
      } else if (Date.now() >= deadline) {
        finish(new Error(`${what}: guest did not answer HTTP on 127.0.0.1:${hostPort} by the deadline`));
      } else {
        attempt();
      }
    }, 25);
    attempt();
  });
}
