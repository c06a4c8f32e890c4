/**
 * Which test files depend on the deployment switch (test/helpers/deployment.ts), found by reading the
 * code rather than by a list kept by hand: test/unit/scale-out-suites.test.ts compares the result with
 * test/scale-out-suites.ts, the list the second pass of `npm test` runs.
 *
 * A file depends on the deployment when it uses one of SWITCH (startTestServer, deploymentEnv,
 * metadataDatabaseUrl, openResultStore, onScaleOut, metadataOnPostgres, testDeployment) directly or
 * through a helper: names are followed through the imports between files under test/, one top-level
 * declaration at a time, so `request` from server.ts (a plain fetch) does not count while
 * `startTestServer` from the same file does. Type-only imports never count.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** The names through which a test reaches the deployment under test, and the files that define them. */
export const SWITCH: Readonly<Record<string, readonly string[]>> = {
  'test/helpers/deployment.ts': [
    'testDeployment',
    'onScaleOut',
    'metadataOnPostgres',
    'metadataDatabaseUrl',
    'deploymentEnv',
    'openResultStore',
  ],
  'test/helpers/server.ts': ['startTestServer'],
};

interface ModuleInfo {
  /** Local name → where it comes from: [module path relative to the root, exported name]. */
  imports: Map<string, [string, string]>;
  /** Top-level declared name → identifiers used inside its declaration. */
  declarations: Map<string, Set<string>>;
  /** Identifiers used by top-level code that declares nothing (describe(), beforeAll(), …). */
  body: Set<string>;
  /** Exported name → local name. */
  exports: Map<string, string>;
}

function identifiersIn(node: ts.Node, into: Set<string>): void {
  const visit = (n: ts.Node) => {
    if (ts.isIdentifier(n)) into.add(n.text);
    // `x.name` names a property, not a binding: only the object side counts.
    if (ts.isPropertyAccessExpression(n)) {
      visit(n.expression);
      return;
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
}

function resolveImport(root: string, from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const target = path.normalize(path.join(path.dirname(from), specifier)).replace(/\.js$/, '.ts');
  const relative = path.relative(root, path.resolve(root, target)).split(path.sep).join('/');
  return relative.startsWith('test/') ? relative : undefined;
}

function parse(root: string, file: string): ModuleInfo {
  const source = ts.createSourceFile(
    file,
    readFileSync(path.join(root, file), 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
  const info: ModuleInfo = {
    imports: new Map(),
    declarations: new Map(),
    body: new Set(),
    exports: new Map(),
  };
  const exported = (node: ts.Node) =>
    ts.canHaveModifiers(node) &&
    (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);

  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      const from = resolveImport(root, file, (statement.moduleSpecifier as ts.StringLiteral).text);
      if (!clause || clause.isTypeOnly || !from) continue;
      if (clause.name) info.imports.set(clause.name.text, [from, 'default']);
      const bindings = clause.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) {
          if (element.isTypeOnly) continue;
          info.imports.set(element.name.text, [from, (element.propertyName ?? element.name).text]);
        }
      } else if (bindings && ts.isNamespaceImport(bindings)) {
        // `import * as h`: any use of h counts as every export of the module.
        info.imports.set(bindings.name.text, [from, '*']);
      }
      continue;
    }
    if (ts.isExportDeclaration(statement)) {
      // `export { a, b as c }` and re-exports from another module.
      const from = statement.moduleSpecifier
        ? resolveImport(root, file, (statement.moduleSpecifier as ts.StringLiteral).text)
        : undefined;
      const clause = statement.exportClause;
      if (statement.isTypeOnly || !clause || !ts.isNamedExports(clause)) continue;
      for (const element of clause.elements) {
        const local = (element.propertyName ?? element.name).text;
        if (from) {
          const alias = `${from}#${local}`;
          info.imports.set(alias, [from, local]);
          info.exports.set(element.name.text, alias);
        } else {
          info.exports.set(element.name.text, local);
        }
      }
      continue;
    }
    if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) continue;
    const names: string[] = [];
    if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isEnumDeclaration(statement)) &&
      statement.name
    ) {
      names.push(statement.name.text);
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        const bound = new Set<string>();
        identifiersIn(declaration.name, bound);
        names.push(...bound);
      }
    }
    const used = new Set<string>();
    identifiersIn(statement, used);
    if (names.length === 0) {
      for (const name of used) info.body.add(name);
      continue;
    }
    for (const name of names) {
      info.declarations.set(name, used);
      if (exported(statement)) info.exports.set(name, name);
    }
  }
  return info;
}

function listFiles(root: string, dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return listFiles(root, relative);
    return entry.name.endsWith('.ts') ? [relative] : [];
  });
}

/**
 * Every `*.test.ts` file under test/ that reaches the deployment switch, as paths relative to `root`
 * (the repository), sorted.
 */
export function deploymentDependentSuites(root: string): string[] {
  const files = listFiles(root, 'test');
  const modules = new Map(files.map((file) => [file, parse(root, file)]));
  const memo = new Map<string, boolean>();

  /** Whether `name`, as bound at the top level of `file`, reaches the switch. */
  const reaches = (file: string, name: string, visiting: Set<string>): boolean => {
    const key = `${file}#${name}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) return false;
    visiting.add(key);
    let result = false;
    const info = modules.get(file);
    if (SWITCH[file]?.includes(name)) result = true;
    else if (info) {
      const imported = info.imports.get(name);
      if (imported) {
        const [from, exportedName] = imported;
        result =
          exportedName === '*'
            ? [...(modules.get(from)?.exports.keys() ?? [])].some((e) => exportOf(from, e, visiting))
            : exportOf(from, exportedName, visiting);
      } else {
        const used = info.declarations.get(name);
        result = used !== undefined && [...used].some((u) => u !== name && reaches(file, u, visiting));
      }
    }
    visiting.delete(key);
    memo.set(key, result);
    return result;
  };
  const exportOf = (file: string, exportedName: string, visiting: Set<string>): boolean => {
    if (SWITCH[file]?.includes(exportedName)) return true;
    const local = modules.get(file)?.exports.get(exportedName);
    return local !== undefined && reaches(file, local, visiting);
  };

  return files
    .filter((file) => file.endsWith('.test.ts'))
    .filter((file) => {
      const info = modules.get(file)!;
      const used = new Set([...info.body, ...[...info.declarations.values()].flatMap((u) => [...u])]);
      return [...used].some((name) => info.imports.has(name) && reaches(file, name, new Set()));
    })
    .sort();
}
