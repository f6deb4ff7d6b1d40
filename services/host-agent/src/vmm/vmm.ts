// The port between the host agent and whatever runs VMs. QemuVmm is the real
// one; FakeVmm (test double) stands in for unit tests of the agent's logic.
// The agent owns ids, generations, claims and the snapshot-store; a Vmm only
// runs processes and moves files.

/** What to run. */
export interface VmLaunch {
  machineId: string;
  image: string;
  cpus: number;
  memoryMb: number;
  env: Record<string, string>;
  /** Host TCP port forwarded to the guest's HTTP port; stable across suspend/resume. */
  hostPort: number;
  /** Guest TCP port the host port forwards to (8080 when absent). */
  guestPort?: number;
  /** Folder of this machine on the host (live memory file, console log, pid, QMP socket). */
  vmDir: string;
}

/** Files of a written snapshot, with what S4 checks before a load. */
export interface SnapshotFileSet {
  statePath: string;
  stateSize: number;
  stateSha256: string;
  memoryPath: string;
  memorySize: number;
  /** "dev:inode:mtime_ns" of the memory file once QEMU has exited. */
  memoryIdentity: string;
  /** Bytes allocated on disk by both files. */
  sizeBytes: number;
}

export interface RunningVm {
  machineId: string;
  pid: number;
}

export interface Vmm {
  /** "kvm", "tcg" or "fake". */
  readonly accel: string;
  /** Cold boot; resolves when the guest's HTTP port answers, rejects on a deadline. */
  boot(vm: VmLaunch): Promise<RunningVm>;
  /**
   * Pause, write the device state into snapshotDir and move the memory file there,
   * end the QEMU process. If `signal` aborts before the state is written, the VM
   * is continued and the promise rejects with an AbortError (L9).
   */
  suspend(vm: VmLaunch, snapshotDir: string, signal?: AbortSignal): Promise<SnapshotFileSet>;
  /**
   * Load a snapshot already checked by the caller, continue it, set the guest clock
   * to the host's (E3) and resolve when the guest's HTTP port answers. The snapshot's
   * files are gone afterwards (S3): the state file deleted, the memory file moved back
   * to the VM's live memory path.
   */
  resume(vm: VmLaunch, files: SnapshotFileSet): Promise<RunningVm>;
  /** End the VM if it runs (graceful then forced). */
  stop(machineId: string, vmDir: string): Promise<void>;
  /** Whether a QEMU process runs this machine. */
  isRunning(machineId: string, vmDir: string): boolean;
  /** Path of the console log the guest writes to (appended across suspend/resume). */
  consolePath(vmDir: string): string;
}
