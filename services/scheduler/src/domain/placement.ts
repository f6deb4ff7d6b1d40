// Placement: a host in the machine's region, alive, with enough free memory;
// the one with the most free memory wins. Pure.
import { failedPrecondition, resourceExhausted } from '../../../../lib/errors';

export interface HostView {
  hostId: string;
  region: string;
  memoryMbTotal: number;
  /** Memory held by machines placed on it (scheduler's own count). */
  memoryMbUsed: number;
  alive: boolean;
  /** Guest images built on it. */
  images: readonly string[];
}

export function chooseHost(hosts: readonly HostView[], region: string, memoryMb: number, image: string, exclude: readonly string[] = []): HostView {
  const inRegion = hosts.filter((h) => h.region === region);
  if (!inRegion.length) {
    const known = [...new Set(hosts.map((h) => h.region))].sort();
    throw failedPrecondition(`no host serves region "${region}"${known.length ? `; regions with hosts: ${known.join(', ')}` : '; no host agent has registered yet'}`);
  }
  const up = inRegion.filter((h) => h.alive && !exclude.includes(h.hostId));
  if (!up.length) throw failedPrecondition(`every host in region "${region}" is unavailable; try again when a host agent is back`);
  const alive = up.filter((h) => h.images.includes(image));
  if (!alive.length) throw imageNotBuilt(image, region, up);
  const fits = alive.filter((h) => h.memoryMbTotal - h.memoryMbUsed >= memoryMb);
  if (!fits.length) {
    const best = Math.max(...alive.map((h) => h.memoryMbTotal - h.memoryMbUsed));
    throw resourceExhausted(`no host in region "${region}" has ${memoryMb} MiB free (the most free is ${best} MiB); stop or destroy machines, or ask for less memory`);
  }
  return fits.sort((a, b) => b.memoryMbTotal - b.memoryMbUsed - (a.memoryMbTotal - a.memoryMbUsed) || a.hostId.localeCompare(b.hostId))[0];
}

/** FAILED_PRECONDITION naming the images the region's hosts do have, and how to build the missing one. */
export function imageNotBuilt(image: string, region: string, hostsUp: readonly HostView[]) {
  const known = [...new Set(hostsUp.flatMap((h) => h.images))].sort();
  return failedPrecondition(`image "${image}" is not built on any host in region "${region}" (images there: ${known.join(', ') || 'none'}); build it with \`torpor images build DIR --name ${image}\``);
}
