/**
 * What git says about the files a measured bundle was made from. The measurement covers every
 * file esbuild read, and esbuild reads what is on disk: an untracked `x.js` beside `x.ts` is what
 * an `./x.js` import resolves to, and an edit not committed is measured like any other. So
 * `cloister measure` and `cloister build` name the inputs git does not track, or that differ from
 * the commit, next to the measurement: a user checking a node measures the source they reviewed,
 * not whatever else sits in their checkout (docs/platform.md §4).
 */
import { execFileSync } from 'node:child_process';

/** The inputs of a bundle, compared with the checkout's git commit. */
export interface SourceStatus {
  /** HEAD's commit id, or undefined when `root` is not a git checkout (or git is missing). */
  readonly commit: string | undefined;
  /** Inputs from the checkout itself (outside node_modules). */
  readonly files: number;
  /** Inputs under node_modules: installed by npm from package-lock.json, not compared. */
  readonly dependencies: number;
  /** Checkout inputs git does not track (ignored ones included), sorted. */
  readonly untracked: readonly string[];
  /** Tracked checkout inputs that differ from HEAD (staged or not), sorted. */
  readonly modified: readonly string[];
}

/**
 * Compares `inputs` (paths relative to `root`, as esbuild's metafile names them) with the git
 * checkout at `root`. Never throws for git's sake: without git, or outside a checkout, `commit`
 * is undefined and nothing is compared.
 */
export function sourceStatus(root: string, inputs: readonly string[]): SourceStatus {
  const own = inputs.filter((p) => !p.split('/').includes('node_modules')).sort();
  const dependencies = inputs.length - own.length;
  const git = (args: string[]): string | undefined => {
    try {
      return execFileSync('git', ['-C', root, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        maxBuffer: 64 << 20,
      });
    } catch {
      return undefined;
    }
  };
  const head = git(['rev-parse', '--verify', '--quiet', 'HEAD'])?.trim();
  if (head === undefined || !/^[0-9a-f]{40,64}$/.test(head)) {
    return { commit: undefined, files: own.length, dependencies, untracked: [], modified: [] };
  }
  const list = (out: string | undefined): Set<string> =>
    new Set((out ?? '').split('\0').filter((p) => p.length > 0));
  // `--` then the paths: an input named like an option is still a path.
  const tracked = list(git(['ls-files', '-z', '--', ...own]));
  const changed = list(git(['diff', '--name-only', '-z', 'HEAD', '--', ...own]));
  return {
    commit: head,
    files: own.length,
    dependencies,
    untracked: own.filter((p) => !tracked.has(p)),
    modified: own.filter((p) => tracked.has(p) && changed.has(p)),
  };
}

/**
 * The `sources` line of `measure` and `build`, and a warning for each input the commit does not
 * hold (empty when there is none).
 */
export function describeSources(s: SourceStatus): { line: string; warnings: string[] } {
  const deps = `${s.dependencies} from node_modules, as npm installed them`;
  if (s.commit === undefined) {
    return {
      line: `${s.files} files (not a git checkout: not compared with a commit) and ${deps}`,
      warnings: [],
    };
  }
  const warnings: string[] = [];
  const name = (n: number): string => (n === 1 ? '1 file' : `${n} files`);
  if (s.untracked.length > 0) {
    warnings.push(
      `the measurement covers ${name(s.untracked.length)} that git does not track: ${s.untracked.join(', ')}; remove ${s.untracked.length === 1 ? 'it' : 'them'}, or review and commit, before you trust this measurement`,
    );
  }
  if (s.modified.length > 0) {
    warnings.push(
      `the measurement covers ${name(s.modified.length)} that ${s.modified.length === 1 ? 'differs' : 'differ'} from commit ${s.commit.slice(0, 12)}: ${s.modified.join(', ')}; the measurement may differ from that commit's (a change in a comment only does not change it)`,
    );
  }
  const clean = warnings.length === 0;
  return {
    line: `${s.files} files, ${clean ? 'all as in' : 'NOT all as in'} git commit ${s.commit} (and ${deps})`,
    warnings,
  };
}
