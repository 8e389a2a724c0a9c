#!/usr/bin/env node
// Fails when a module under src/ imports from a layer it may not depend on (see DESIGN.md,
// "Layers"). Services reach storage and the index only through the shapes in services/ports.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ALLOWED = {
  dicom: [],
  settings: ['dicom'],
  network: ['dicom'],
  storage: ['dicom', 'settings'],
  db: ['dicom', 'settings'],
  services: ['dicom', 'network', 'settings'],
  server: ['dicom', 'settings', 'network', 'storage', 'db', 'services'],
  web: ['dicom', 'settings', 'network', 'storage', 'db', 'services', 'server'],
  cli: ['dicom', 'settings', 'network', 'storage', 'db', 'services', 'server', 'web'],
};
const SHARED = new Set(['errors.ts', 'errors.js', 'group-run.ts', 'group-run.js', 'types']);
const root = resolve(import.meta.dirname, '..', 'src');

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (path.endsWith('.ts')) yield path;
  }
}

function layerOf(path) {
  const [first] = relative(root, path).split(sep);
  return SHARED.has(first) ? null : first;
}

const problems = [];
for (const file of files(root)) {
  const layer = layerOf(file);
  const source = readFileSync(file, 'utf8');
  for (const match of source.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = resolve(dirname(file), match[1]);
    if (!target.startsWith(root)) continue;
    const targetLayer = layerOf(target);
    if (targetLayer === null || targetLayer === layer) continue;
    if (layer === null || !(ALLOWED[layer] ?? []).includes(targetLayer)) {
      problems.push(
        `${relative(root, file)}: layer '${layer}' may not import '${match[1]}' (${targetLayer})`,
      );
    }
  }
}
if (problems.length > 0) {
  console.error(`layer check failed:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('layer check: ok');
