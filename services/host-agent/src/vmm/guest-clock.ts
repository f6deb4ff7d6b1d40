// Guest clock sync (E3) over the virtio-serial port "torpor.clock", which QEMU
// exposes on the host as the FIFOs <base>.in (to the guest) and <base>.out.
import * as fs from 'fs';
import { sleep } from './qemu-process';

/**
 * Sets the guest clock to the host's (the guest agent answers
 * "ok <before_ms> <after_ms>"). Returns the correction in ms.
 */
export async function syncGuestClock(base: string, timeoutMs: number): Promise<number> {
  const rfd = fs.openSync(base + '.out', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(4096);
    const readSome = (): string => {
      try {
        const n = fs.readSync(rfd, buf, 0, buf.length, null);
        return n > 0 ? buf.toString('utf8', 0, n) : '';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return '';
        throw e;
      }
    };
    while (readSome()) {
      /* drain stale answers */
    }
    const wfd = fs.openSync(base + '.in', fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const hostMs = performance.timeOrigin + performance.now();
    try {
      fs.writeSync(wfd, `T ${hostMs.toFixed(3)}\n`);
    } finally {
      fs.closeSync(wfd);
    }
    const deadline = Date.now() + timeoutMs;
    let acc = '';
    for (;;) {
      acc += readSome();
      const m = /(ok|err) ([0-9.]+) ([0-9.]+)\n/.exec(acc);
      if (m) {
        if (m[1] !== 'ok') throw new Error('guest agent could not set the clock');
        return hostMs - parseFloat(m[2]);
      }
      if (Date.now() > deadline) throw new Error(`guest clock agent did not answer within ${timeoutMs} ms`);
      await sleep(1);
    }
  } finally {
    fs.closeSync(rfd);
  }
}
