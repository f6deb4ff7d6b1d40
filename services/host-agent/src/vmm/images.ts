// Guest images: <dataDir>/images/<name>/{vmlinux,initramfs.cpio,image.json},
// built by scripts/build-images.sh from the host's Debian packages.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface ImageInfo {
  name: string;
  dir: string;
  kernel: string;
  initramfs: string;
}

export const IMAGE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Path of scripts/build-images.sh, found from this file upwards (works from src and dist). */
export function buildScriptPath(): string {
  let d = __dirname;
  for (let i = 0; i < 8; i++) {
    const p = path.join(d, 'scripts', 'build-images.sh');
    if (fs.existsSync(p)) return p;
    d = path.dirname(d);
  }
  throw new Error('scripts/build-images.sh not found');
}

function runBuild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('bash', [buildScriptPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout!.on('data', (d) => (out += d.toString()));
    c.stderr!.on('data', (d) => (err += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`image build failed (${code}): ${(err || out).trim().slice(-2000)}`)),
    );
  });
}

export function imageInfo(dataDir: string, name: string): ImageInfo | null {
  if (!IMAGE_NAME_RE.test(name)) return null;
  const dir = path.join(path.resolve(dataDir), 'images', name);
  const kernel = path.join(dir, 'vmlinux');
  const initramfs = path.join(dir, 'initramfs.cpio');
  if (!fs.existsSync(kernel) || !fs.existsSync(initramfs)) return null;
  return { name, dir, kernel, initramfs };
}

/** Builds the stock images (default, slow-start); fast when they are up to date. */
export async function buildDefaultImages(dataDir: string): Promise<ImageInfo[]> {
  await runBuild([path.resolve(dataDir)]);
  return ['default', 'slow-start'].map((n) => imageInfo(dataDir, n)!);
}

/**
 * `torpor images build DIR --name N`: an image whose app is DIR/entrypoint (run by
 * /bin/sh in /app, the folder's copy, with the machine's env and TORPOR_MACHINE_ID;
 * it should serve HTTP on $PORT, 8080 when unset). Anything it prints reaches the console log.
 */
export async function buildImageFromDir(dataDir: string, dir: string, name: string): Promise<ImageInfo> {
  if (!IMAGE_NAME_RE.test(name)) throw new Error(`bad image name '${name}': use lowercase letters, digits, '.', '_' or '-' (at most 63)`);
  if (name === 'default' || name === 'slow-start') throw new Error(`image name '${name}' is reserved`);
  const st = await fs.promises.stat(dir).catch(() => null);
  if (!st || !st.isDirectory()) throw new Error(`${dir} is not a folder`);
  if (!fs.existsSync(path.join(dir, 'entrypoint'))) throw new Error(`${dir} has no 'entrypoint' script`);
  await runBuild([path.resolve(dataDir), '--name', name, '--from', path.resolve(dir)]);
  const info = imageInfo(dataDir, name);
  if (!info) throw new Error(`image '${name}' was not produced`);
  return info;
}

/** Names of the images built in dataDir. */
export function listImages(dataDir: string): string[] {
  const d = path.join(path.resolve(dataDir), 'images');
  try {
    return fs
      .readdirSync(d)
      .filter((n) => IMAGE_NAME_RE.test(n) && imageInfo(dataDir, n))
      .sort();
  } catch {
    return [];
  }
}
