// Keeps this host registered with the scheduler: registers now and again every
// heartbeat, logging (not crashing) while the scheduler is away.
import { HostInfo, HostRegistryClient } from '../../../gen/torpor/hostagent/v1/hostagent';
import { asyncClient } from '../../../lib/grpc/client';
import type { Logger } from '../../../lib/log';

export function keepRegistered(schedulerAddress: string, info: () => HostInfo, log: Logger): () => void {
  const client = asyncClient(HostRegistryClient, schedulerAddress, 5000);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failing = false;
  let first = true;
  const beat = async () => {
    let next = 2;
    try {
      next = (await client.registerHost(info())).heartbeatSeconds || 2;
      if (failing || first) log.info({ scheduler: schedulerAddress }, failing ? 'registered with the scheduler again' : 'registered with the scheduler');
      failing = false;
      first = false;
    } catch (err) {
      if (!failing) log.warn({ scheduler: schedulerAddress, err: (err as Error).message }, 'cannot register with the scheduler; retrying');
      failing = true;
      next = 1;
    }
    if (!stopped) timer = setTimeout(beat, next * 1000);
  };
  void beat();
  return () => {
    stopped = true;
    clearTimeout(timer);
    client.close();
  };
}
