import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FilePath, IMAGE_EXTENSIONS, displayPath } from './image-source';

/** Why an entry was left out, in the singular and the plural, for the notice line. */
interface Reason {
  one: string;
  many: string;
}

const SKIP = {
  outside: { one: 'symbolic link that points outside the data folder', many: 'symbolic links that point outside the data folder' },
  broken: { one: 'broken symbolic link', many: 'broken symbolic links' },
  loop: { one: 'symbolic link that loops back to a folder containing it', many: 'symbolic links that loop back to a folder containing them' },
  unlistable: { one: 'folder that cannot be listed', many: 'folders that cannot be listed' },
  classNotUtf8: {
    one: 'folder whose name is not valid UTF-8 (folder names become class labels)',
    many: 'folders whose names are not valid UTF-8 (folder names become class labels)',
  },
} satisfies Record<string, Reason>;

interface Found {
  kind: 'file' | 'folder';
  /** The real path (links resolved), as bytes: only for folders and links (plain files need no realpath call). */
  real?: Buffer;
}

interface Entry {
  name: Buffer;
  /** The path: a string while every name in it is valid UTF-8, else bytes. */
  path: FilePath;
  found: Found;
}

const SEP = path.sep.charCodeAt(0);
const bytesOf = (p: FilePath): Buffer => (typeof p === 'string' ? Buffer.from(p) : p);
/** Joins as strings when both parts decode, else as bytes: a name that is not valid UTF-8 can still be opened. */
function join(dir: FilePath, name: Buffer, text: string | undefined): FilePath {
  return typeof dir === 'string' && text !== undefined ? `${dir}${path.sep}${text}` : Buffer.concat([bytesOf(dir), Buffer.from(path.sep), name]);
}

/**
 * Lists a data folder for the loaders. Symbolic links are followed when their target stays inside the data folder
 * (its real path), so a folder assembled from links to its own files works, while a downloaded archive cannot pull
 * files from elsewhere on the disk into a cache or a model. Names that are not valid UTF-8 are kept as bytes and
 * read as they are. Whatever is left out is counted by reason, for one notice line per reason.
 */
export class FolderListing {
  private readonly realRoot: Buffer;
  private readonly skipped = new Map<Reason, { count: number; examples: string[] }>();
  /** Entries already counted: a folder listed twice (train/ for its classes, then for its images) counts once. */
  private readonly counted = new Set<string>();

  constructor(private readonly root: string) {
    this.realRoot = fs.realpathSync(root, { encoding: 'buffer' });
  }

  /** Records an entry left out (also used by the sources for reasons of their own). */
  skip(reason: Reason, example: string): void {
    const key = `${reason.one}\0${example}`;
    if (this.counted.has(key)) return;
    this.counted.add(key);
    const s = this.skipped.get(reason) ?? { count: 0, examples: [] };
    s.count++;
    if (s.examples.length < 3) s.examples.push(example);
    this.skipped.set(reason, s);
  }

  /** One line per reason, e.g. "skipped 2 symbolic links that point outside the data folder (cats/a.png -> /etc/passwd; ...)". */
  notices(): string[] {
    return [...this.skipped].map(([reason, s]) => `skipped ${s.count} ${s.count === 1 ? reason.one : reason.many} (${s.examples.join('; ')})`);
  }

  /**
   * The sub-folders of `dir` (class or split folders), by name, sorted; hidden ones are ignored. Their names become
   * labels, so a name that is not valid UTF-8 is left out with a notice.
   */
  folders(dir: string): string[] {
    const names: string[] = [];
    for (const { name, path: p, found } of this.entries(dir)) {
      if (found.kind !== 'folder') continue;
      if (typeof p !== 'string') this.skip(SKIP.classNotUtf8, this.relative(p));
      else names.push(name.toString('utf8'));
    }
    return names.sort();
  }

  /** The image files (by extension) in `dir`, or under it at any depth, in a stable order. */
  images(dir: string, recursive: boolean): FilePath[] {
    const out: FilePath[] = [];
    const walk = (d: FilePath, ancestors: Set<string>) => {
      for (const { name, path: p, found } of this.entries(d)) {
        if (found.kind === 'file') {
          if (IMAGE_EXTENSIONS.has(path.extname(name.toString('latin1')).toLowerCase())) out.push(p);
        } else if (recursive) {
          // Only a link can lead back up; the real paths of the folders above tell.
          const key = found.real!.toString('latin1');
          if (ancestors.has(key)) this.skip(SKIP.loop, this.relative(p));
          else walk(p, new Set([...ancestors, key]));
        }
      }
    };
    const start = this.resolve(bytesOf(dir));
    if (start?.kind === 'folder') walk(dir, new Set([start.real!.toString('latin1')]));
    return out;
  }

  /**
   * A file the data set's own index names (Tiny ImageNet's validation annotations): undefined, with a notice, when
   * it is missing or a link that leaves the folder.
   */
  file(file: string, missing: Reason): FilePath | undefined {
    const stat = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!stat) {
      this.skip(missing, this.relative(bytesOf(file)));
      return undefined;
    }
    if (!stat.isSymbolicLink()) return stat.isFile() ? file : undefined;
    return this.resolve(bytesOf(file))?.kind === 'file' ? file : undefined;
  }

  /** The entries of a folder that are files or folders (links followed when they stay inside), sorted by name. */
  private entries(dir: FilePath): Entry[] {
    let dirents: fs.Dirent<Buffer>[];
    try {
      dirents = fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch (err) {
      this.skip(SKIP.unlistable, `${this.relative(dir)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return [];
    }
    const named = dirents.filter((e) => e.name[0] !== 0x2e) // hidden: .DS_Store, .git, ...
      .map((e) => ({ e, text: e.name.toString('utf8'), utf8: isUtf8(e.name) }))
      // Sorted as JavaScript sorts the decoded names (the order the loaders always used), bytes breaking ties.
      .sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : Buffer.compare(a.e.name, b.e.name)));
    const out: Entry[] = [];
    for (const { e, text, utf8 } of named) {
      const p = join(dir, e.name, utf8 ? text : undefined);
      // Plain files and folders need no realpath: only links can lead outside or loop.
      const found: Found | undefined = e.isSymbolicLink() ? this.resolve(bytesOf(p)) : e.isDirectory() ? { kind: 'folder', real: this.realOf(p) } : e.isFile() ? { kind: 'file' } : undefined;
      if (found) out.push({ name: e.name, path: p, found });
    }
    return out;
  }

  private realOf(p: FilePath): Buffer {
    try {
      return fs.realpathSync(p, { encoding: 'buffer' });
    } catch {
      return bytesOf(p);
    }
  }

  /** What a path is once links are resolved; undefined (with a notice for links) when it is neither, or leaves the folder. */
  private resolve(p: Buffer): Found | undefined {
    let real: Buffer;
    let stat: fs.Stats;
    try {
      real = fs.realpathSync(p, { encoding: 'buffer' });
      stat = fs.statSync(real);
    } catch {
      if (fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink()) this.skip(SKIP.broken, this.relative(p));
      return undefined;
    }
    if (!this.inside(real)) {
      this.skip(SKIP.outside, `${this.relative(p)} -> ${real.toString('utf8')}`);
      return undefined;
    }
    return stat.isDirectory() ? { kind: 'folder', real } : stat.isFile() ? { kind: 'file', real } : undefined;
  }

  private inside(real: Buffer): boolean {
    const root = this.realRoot[this.realRoot.length - 1] === SEP ? this.realRoot : Buffer.concat([this.realRoot, Buffer.from(path.sep)]);
    return real.equals(this.realRoot) || (real.length > root.length && real.subarray(0, root.length).equals(root));
  }

  private relative(p: FilePath): string {
    return path.relative(this.root, displayPath(p)) || '.';
  }
}
