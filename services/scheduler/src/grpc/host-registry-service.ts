// HostRegistry: host agents register and heartbeat here.
import type { HostRegistryServer } from '../../../../gen/torpor/hostagent/v1/hostagent';
import { invalidArgument } from '../../../../lib/errors';
import type { AsyncService } from '../../../../lib/grpc/server';
import * as check from '../../../../lib/validate';
import type { MachineStore } from '../store/machine-store';

export function hostRegistryService(store: MachineStore, heartbeatSeconds: number, now = Date.now): AsyncService<HostRegistryServer> {
  return {
    async registerHost(req) {
      check.name(req.hostId, 'host_id');
      check.name(req.region, 'region');
      if (!/^[\w.-]+:\d{1,5}$/.test(req.address)) throw invalidArgument(`address "${req.address.slice(0, 80)}" must be host:port`);
      check.intInRange(req.memoryMbTotal, 'memory_mb_total', 128, 4 * 1024 * 1024);
      if (req.images.length > 1000) throw invalidArgument('images: at most 1000');
      store.upsertHost({ hostId: req.hostId, region: req.region, address: req.address, memoryMbTotal: req.memoryMbTotal, accel: req.accel, lastSeen: now(), images: req.images.filter((i) => /^[a-z0-9][a-z0-9._-]{0,62}$/.test(i)) });
      return { heartbeatSeconds };
    },
  };
}
