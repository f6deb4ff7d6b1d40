// Checks a MachineConfig from the API and fills its defaults; INVALID_ARGUMENT says what to fix.
import { Autostop, MachineConfig } from '../../../../gen/torpor/machines/v1/machines';
import { invalidArgument } from '../../../../lib/errors';
import * as check from '../../../../lib/validate';

const IMAGE_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const SCHEDULES = ['', 'hourly', 'daily', 'weekly', 'monthly'];

export function validConfig(c: MachineConfig | undefined): MachineConfig {
  if (!c) throw invalidArgument('config is required (at least config.image and config.guest.memory_mb)');
  if (!c.image) throw invalidArgument('config.image is required, e.g. "default"');
  if (!IMAGE_RE.test(c.image)) throw invalidArgument(`config.image "${c.image.slice(0, 80)}" must be 1 to 63 lowercase letters, digits, dots, dashes or underscores`);
  const guest = c.guest ?? { cpus: 0, memoryMb: 0, cpuKind: '', gpus: 0 };
  const cpus = guest.cpus || 1;
  check.intInRange(cpus, 'config.guest.cpus', 1, 16);
  if (!guest.memoryMb) throw invalidArgument('config.guest.memory_mb is required (128 to 16384)');
  check.intInRange(guest.memoryMb, 'config.guest.memory_mb', 128, 16384);
  check.intInRange(guest.gpus, 'config.guest.gpus', 0, 8);
  const cpuKind = guest.cpuKind || 'shared';
  if (!['shared', 'performance'].includes(cpuKind)) throw invalidArgument(`config.guest.cpu_kind must be "shared" or "performance", got "${cpuKind.slice(0, 40)}"`);
  check.intInRange(c.swapSizeMb, 'config.swap_size_mb', 0, 16384);
  if (!SCHEDULES.includes(c.schedule)) throw invalidArgument(`config.schedule must be one of hourly, daily, weekly, monthly (or empty), got "${c.schedule.slice(0, 40)}"`);
  const envKeys = Object.keys(c.env);
  if (envKeys.length > 64) throw invalidArgument(`config.env has ${envKeys.length} entries; at most 64 are allowed`);
  for (const [k, v] of Object.entries(c.env)) {
    if (!ENV_KEY_RE.test(k)) throw invalidArgument(`config.env key "${k.slice(0, 40)}" must be a shell variable name`);
    check.text(v, `config.env.${k}`, 4096);
    if (/[\s\0]/.test(v)) throw invalidArgument(`config.env.${k} must not contain white space or NUL (it is passed on the kernel command line)`);
  }
  if (c.services.length > 8) throw invalidArgument('config.services has more than 8 entries');
  c.services.forEach((s, i) => {
    check.intInRange(s.internalPort, `config.services[${i}].internal_port`, 1, 65535);
    s.ports.forEach((p, j) => check.intInRange(p.port, `config.services[${i}].ports[${j}].port`, 1, 65535));
    if (s.autostop === Autostop.UNRECOGNIZED || !(s.autostop in Autostop)) throw invalidArgument(`config.services[${i}].autostop must be off, stop or suspend`);
    check.intInRange(s.minMachinesRunning, `config.services[${i}].min_machines_running`, 0, 1000);
  });
  if (Object.keys(c.metadata).length > 64) throw invalidArgument('config.metadata has more than 64 entries');
  for (const [k, v] of Object.entries(c.metadata)) check.text(k + v, `config.metadata.${k.slice(0, 40)}`, 1024);
  return { ...c, guest: { cpus, memoryMb: guest.memoryMb, cpuKind, gpus: guest.gpus } };
}
