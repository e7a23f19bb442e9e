/**
 * Builds the publishable package: `npm run build:gateway-client` (also the package's prepack).
 *
 * The source imports the event contract from libs/billing by its path alias
 * (`@tokenmeter/billing/usage-event`), which only this repository resolves. The build compiles
 * src/index.ts and the libs/billing files it reaches into dist/ (CommonJS + .d.ts), keeping their
 * layout under libs/, and rewrites each alias to the relative path of the compiled file. So the
 * package ships the ingestor's very validation code, not a copy of it, and needs only kafkajs and zod.
 */
import path from 'node:path';
import { rmSync } from 'node:fs';
import ts from 'typescript';

const PACKAGE_DIR = __dirname;
const LIBS_DIR = path.resolve(PACKAGE_DIR, '..');
const ALIAS = '@tokenmeter/billing/';
const BILLING_SRC = path.join(LIBS_DIR, 'billing', 'src');

function relativeSpecifier(fromFile: string, aliased: string): string {
  const target = path.join(BILLING_SRC, aliased.slice(ALIAS.length));
  const relative = path.relative(path.dirname(fromFile), target).split(path.sep).join('/');
  return relative.startsWith('.') ? relative : `./${relative}`;
}

/** Rewrites `@tokenmeter/billing/x` in imports, exports and `import("...")` types (the .d.ts files have them too). */
function rewriteAliases(context: ts.TransformationContext): (root: ts.SourceFile) => ts.SourceFile {
  const { factory } = context;
  return (root) => {
    const fileName = root.fileName;
    const rewrite = (specifier: ts.Expression | undefined) =>
      specifier && ts.isStringLiteral(specifier) && specifier.text.startsWith(ALIAS)
        ? factory.createStringLiteral(relativeSpecifier(fileName, specifier.text))
        : undefined;
    const visit = (node: ts.Node): ts.Node => {
      if (ts.isImportDeclaration(node)) {
        const to = rewrite(node.moduleSpecifier);
        if (to) return factory.updateImportDeclaration(node, node.modifiers, node.importClause, to, node.attributes);
      } else if (ts.isExportDeclaration(node)) {
        const to = rewrite(node.moduleSpecifier);
        if (to) return factory.updateExportDeclaration(node, node.modifiers, node.isTypeOnly, node.exportClause, to, node.attributes);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
        const to = rewrite(node.argument.literal as ts.Expression);
        if (to) {
          return factory.updateImportTypeNode(node, factory.createLiteralTypeNode(to), node.attributes, node.qualifier, node.typeArguments, node.isTypeOf);
        }
      }
      return ts.visitEachChild(node, visit, context);
    };
    return ts.visitEachChild(root, visit, context);
  };
}

export function buildGatewayClient(outDir: string = path.join(PACKAGE_DIR, 'dist')): string[] {
  const configPath = path.join(LIBS_DIR, '..', 'tsconfig.json');
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); } });
  if (!config) throw new Error(`cannot read ${configPath}`);
  const options: ts.CompilerOptions = {
    ...config.options,
    rootDir: LIBS_DIR,
    outDir,
    declaration: true,
    sourceMap: false,
    noEmit: false,
    incremental: false,
    // Only Node's types: the package needs no others, and loading every @types/* of the repo is most of the build time.
    types: ['node'],
    emitDecoratorMetadata: false,
    experimentalDecorators: false,
  };
  rmSync(outDir, { recursive: true, force: true });
  const program = ts.createProgram([path.join(PACKAGE_DIR, 'src', 'index.ts')], options);
  const emitted: string[] = [];
  const result = program.emit(undefined, (file, text) => {
    ts.sys.writeFile(file, text);
    emitted.push(path.relative(outDir, file));
  }, undefined, false, {
    before: [rewriteAliases],
    afterDeclarations: [(context) => (node) => (ts.isSourceFile(node) ? rewriteAliases(context)(node) : node)],
  });
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics];
  if (diagnostics.length > 0) {
    throw new Error(ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => LIBS_DIR, getNewLine: () => '\n' }));
  }
  const outside = emitted.filter((f) => !f.startsWith(`gateway-client${path.sep}src${path.sep}`) && !f.startsWith(`billing${path.sep}src${path.sep}`));
  if (outside.length > 0) throw new Error(`the package would ship files from outside libs/gateway-client and libs/billing: ${outside.join(', ')}`);
  return emitted.sort();
}

if (require.main === module) {
  const files = buildGatewayClient();
  // On stderr: npm pack's prepack shares stdout with `npm pack --json`.
  process.stderr.write(`built ${files.length} files into ${path.relative(process.cwd(), path.join(PACKAGE_DIR, 'dist')) || '.'}\n`);
}
