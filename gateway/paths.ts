// Where the package is installed, so bundled files (the quick-start config, migrations,
// templates) are found the same way from the TypeScript sources and from the built dist/.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "prisma"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("Countersign: cannot find its package root (package.json beside prisma/)");
    dir = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot();
export const QUICKSTART_CONFIG = join(PACKAGE_ROOT, "gateway", "config", "quickstart.yaml");
