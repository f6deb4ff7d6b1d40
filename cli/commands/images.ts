// `torpor images build DIR --name N`: builds a guest image with the host agent's image builder
// (services/host-agent/src/vmm/images.ts, loaded on use so other commands start fast).
import path from 'node:path';
import { Command } from 'commander';
import { Context } from '../context';
import { UsageError } from '../errors';
import { action } from '../run';

export const IMAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function imagesCommand(): Command {
  const cmd = new Command('images').description('guest images');
  cmd
    .command('build')
    .description('build image NAME from DIR (DIR/entrypoint runs as the app)')
    .argument('<dir>', 'folder with the app')
    .requiredOption('--name <name>', 'image name (lowercase letters, digits, . _ -)')
    .option('--data <dir>', 'Torpor data folder (env TORPOR_DATA)', process.env.TORPOR_DATA ?? 'data')
    .action(
      action(async (ctx: Context, dir: string, opts: { name: string; data: string }) => {
        if (!IMAGE_NAME.test(opts.name)) {
          throw new UsageError(`bad image name "${opts.name}": lowercase letters, digits, . _ - (at most 63)`);
        }
        const { buildImageFromDir } = await import('../../services/host-agent/src/vmm/images');
        ctx.note(`building image ${opts.name} from ${dir} ...`);
        const info = await buildImageFromDir(path.resolve(opts.data), path.resolve(dir), opts.name);
        if (ctx.json) return ctx.printJson(info);
        ctx.print(`built image ${info.name} in ${info.dir}`);
      }),
    );
  return cmd;
}
