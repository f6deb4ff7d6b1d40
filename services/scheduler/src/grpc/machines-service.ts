// gRPC adapter of the public Machines API: validates input, calls the lifecycle, maps results.
import { MachinesServer, StartMachineResponse } from '../../../../gen/torpor/machines/v1/machines';
import { invalidArgument } from '../../../../lib/errors';
import type { AsyncService } from '../../../../lib/grpc/server';
import { eventsOfMachine } from '../../../../lib/outbox';
import type { Db } from '../../../../lib/sqlite';
import * as check from '../../../../lib/validate';
import type { MachineLifecycle } from '../lifecycle';
import { validConfig } from './config-validation';
import { machineToProto, stateFromProto, stateToProto } from './mapping';

export function machinesService(life: MachineLifecycle, db: Db): AsyncService<MachinesServer> {
  return {
    async createMachine(req) {
      const app = check.name(req.app, 'app');
      if (req.name) check.name(req.name, 'name');
      const region = check.name(req.region, 'region');
      const m = await life.create({ app, name: req.name, region, config: validConfig(req.config), skipStart: req.skipStart });
      return machineToProto(m);
    },
    async getMachine(req) {
      return machineToProto(life.get(check.machineId(req.id)));
    },
    async listMachines(req) {
      if (req.app) check.name(req.app, 'app');
      const state = req.state ? stateFromProto(req.state) : undefined;
      return { machines: life.list({ app: req.app || undefined, state }).map(machineToProto) };
    },
    async updateMachine(req) {
      return machineToProto(await life.update(check.machineId(req.id), validConfig(req.config)));
    },
    async startMachine(req) {
      const r = await life.start(check.machineId(req.id));
      return StartMachineResponse.fromPartial({ machine: machineToProto(r.machine), previousState: stateToProto(r.previousState), resumed: r.resumed, reason: r.reason });
    },
    async stopMachine(req) {
      return machineToProto(await life.stop(check.machineId(req.id)));
    },
    async suspendMachine(req) {
      return machineToProto(await life.suspend(check.machineId(req.id)));
    },
    async waitMachine(req, ctx) {
      const id = check.machineId(req.id);
      if (!req.state) throw invalidArgument('state is required: one of STARTED, STOPPED, SUSPENDED, DESTROYED');
      const target = stateFromProto(req.state);
      const timeout = req.timeoutSeconds === 0 ? 60 : check.intInRange(req.timeoutSeconds, 'timeout_seconds', 1, 300);
      check.text(req.instanceId, 'instance_id', 64);
      return machineToProto(await life.wait(id, target, timeout * 1000, req.instanceId, ctx.signal));
    },
    async destroyMachine(req) {
      return { machine: machineToProto(await life.destroy(check.machineId(req.id), req.force)) };
    },
    async listMachineEvents(req) {
      const id = check.machineId(req.id);
      life.get(id); // NOT_FOUND for an unknown machine
      return {
        events: eventsOfMachine(db, id).map((e) => ({ id: e.id, subject: e.subject, sequence: e.sequence, json: e.payload, published: e.published_at !== null })),
      };
    },
  };
}
