// `torpor images build DIR --name N`: builds a guest image with the host agent's image builder.
import path from 'node:path';
import { Command } from 'commander';
import { Context } from '../context';
import { UsageError } from '../errors';
import { action } from '../run';

type BuildImageFromDir = (dataDir: string, dir: string, name: string) => unknown;

/** Loaded on use: the builder lives in the host agent and pulls in its VM layer. */
export function loadImageBuilder(): BuildImageFromDir {
  const modulePath = '../../services/host-agent/src/vmm/images';
  let mod: { buildImageFromDir?: BuildImageFromDir };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(modulePath);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes('vmm/images')) {
      throw new Error('this build of torpor has no image builder (services/host-agent/src/vmm/images.ts is missing); use scripts/build-images.sh --name N --from DIR instead');
    }
    throw err;
  }
  if (typeof mod.buildImageFromDir !== 'function') {
    throw new Error('the host agent image module does not export buildImageFromDir');
  }
  return mod.buildImageFromDir;
}

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
        if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(opts.name)) {
          throw new UsageError(`bad image name "${opts.name}": lowercase letters, digits, . _ - (at most 63)`);
        }
        const build = loadImageBuilder();
        ctx.note(`building image ${opts.name} from ${dir} ...`);
        const result = await build(path.resolve(opts.data), path.resolve(dir), opts.name);
        if (ctx.json) return ctx.printJson(result ?? { name: opts.name });
        ctx.print(`built image ${opts.name}` + (result && typeof result === 'object' ? `\n${JSON.stringify(result, null, 2)}` : ''));
      }),
    );
  return cmd;
}
