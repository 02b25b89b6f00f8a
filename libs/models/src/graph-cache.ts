/**
 * The on-disk cache of prepared graphs: what a load computed once (a quantized graph and its weights, the verdict
 * of the attention rewrite's check) so that the next load of the same model with the same options reads it
 * instead of computing it again.
 *
 * An entry is a directory `graphs/<key>/` whose key hashes the model's content (the graph file and each external
 * data file it reads), the options, the rewrite code's version and ONNX Runtime's. Content hashes are memoized by
 * (device, inode, size, mtime), so a file is hashed once, not at every load. An entry is built in a temporary
 * directory and renamed into place, so readers never see half of one and two workers building the same entry at
 * once both end up with a whole one. `meta.json` is written last and rewritten atomically.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Bump when a rewrite's output changes for the same input and options: old entries are then not used. */
export const GRAPH_REWRITE_VERSION = 3;

/** The default cache directory: `$XDG_CACHE_HOME/switchyard`, or `~/.cache/switchyard`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'switchyard');
}

export class GraphCache {
  constructor(readonly dir: string) {}

  /** The sha256 of a file's content, computed once per (device, inode, size, mtime); `onHash` runs when it is. */
  fingerprint(file: string, onHash?: (bytes: bigint) => void): string {
    const stat = statSync(file, { bigint: true });
    const id = `${resolve(file)}\0${stat.dev}\0${stat.ino}\0${stat.size}\0${stat.mtimeNs}`;
    const memo = join(this.dir, 'fingerprints', `${sha256(id)}.txt`);
    try {
      const known = readFileSync(memo, 'utf8').trim();
      if (/^[0-9a-f]{64}$/.test(known)) return known;
    } catch {
      // not hashed yet
    }
    onHash?.(stat.size);
    const digest = hashFile(file);
    mkdirSync(join(this.dir, 'fingerprints'), { recursive: true });
    writeAtomic(memo, digest);
    return digest;
  }

  /** The key of an entry: a hash of everything its content depends on. */
  key(parts: Record<string, unknown>): string {
    return sha256(JSON.stringify({ ...parts, rewrite: GRAPH_REWRITE_VERSION })).slice(0, 32);
  }

  entryDir(key: string): string {
    return join(this.dir, 'graphs', key);
  }

  /** The entry's metadata, or null when there is no whole entry under `key`. */
  read<T>(key: string): T | null {
    try {
      return JSON.parse(readFileSync(join(this.entryDir(key), 'meta.json'), 'utf8')) as T;
    } catch {
      return null;
    }
  }

  /**
   * Builds an entry: `build` writes its files into a fresh directory and returns the metadata, which is written
   * last; the directory then becomes the entry. If another process built the same entry meanwhile, theirs is kept.
   */
  create<T>(key: string, build: (dir: string) => T): T {
    const target = this.entryDir(key);
    const staging = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    mkdirSync(staging, { recursive: true });
    try {
      const meta = build(staging);
      writeFileSync(join(staging, 'meta.json'), JSON.stringify(meta, null, 2));
      const built = this.read<T>(key);
      if (built) return built; // another process finished first
      // a directory without metadata is what a crashed build left behind
      if (existsSync(target)) rmSync(target, { recursive: true, force: true });
      try {
        renameSync(staging, target);
      } catch (err) {
        // another process renamed its copy first: use that one
        if (!existsSync(join(target, 'meta.json'))) throw err;
      }
      return this.read<T>(key) ?? meta;
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /**
   * A staging directory for an entry built by asynchronous work: `commit` writes the metadata and renames it into
   * place (keeping another process's whole entry if it got there first); `abort` removes it.
   */
  stage<T>(key: string): { dir: string; commit(meta: T): void; abort(): void } {
    const target = this.entryDir(key);
    const dir = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    mkdirSync(dir, { recursive: true });
    const abort = () => rmSync(dir, { recursive: true, force: true });
    return {
      dir,
      abort,
      commit: (meta: T) => {
        try {
          writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 2));
          if (this.read<T>(key)) return;
          if (existsSync(target)) rmSync(target, { recursive: true, force: true });
          renameSync(dir, target);
        } finally {
          abort();
        }
      },
    };
  }

  /** Removes an entry (one that turned out to be unusable). */
  remove(key: string): void {
    rmSync(this.entryDir(key), { recursive: true, force: true });
  }

  /** Replaces an entry's metadata (a later verdict), atomically. */
  update<T>(key: string, meta: T): void {
    const dir = this.entryDir(key);
    mkdirSync(dir, { recursive: true });
    writeAtomic(join(dir, 'meta.json'), JSON.stringify(meta, null, 2));
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function hashFile(file: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(8 << 20);
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}
