import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The dependency rule (docs/ARCHITECTURE.md): folders of src/ by layer, top to bottom. A file may import
 * from its own layer and the layers below it, never from a layer above. Within a layer, folders may use
 * each other (e.g. auth reads keys from store), as long as no cycle forms.
 */
const LAYERS = [
  ['cli'],
  ['app'],
  ['http'],
  ['service'],
  ['worker', 'dispatch', 'events'],
  ['store', 'results', 'encoding', 'export', 'connectors', 'auth', 'crypto', 'net', 'config', 'wire'],
  ['core'],
];

const layerRules = LAYERS.flatMap((layer, i) => {
  const above = LAYERS.slice(0, i).flat();
  if (above.length === 0) return [];
  return [
    {
      files: layer.map((folder) => `src/${folder}/**/*.ts`),
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                group: above.flatMap((folder) => [
                  `../${folder}/*`,
                  `../../${folder}/*`,
                  `../../../${folder}/*`,
                ]),
                message: `src/${layer.join(', src/')} may not import from a layer above it (${above.join(', ')}): see "The dependency rule" in docs/ARCHITECTURE.md.`,
              },
              {
                group: ['**/test/**', '**/bench/**', '**/web/**'],
                message: 'Product code does not import tests, benchmarks or the web console.',
              },
            ],
          },
        ],
      },
    },
  ];
});

export default tseslint.config(
  { ignores: ['dist/', 'data/', 'files/', 'node_modules/', 'web/vendor/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Promises nobody awaits or catches lose their errors (and may crash the process on rejection); a
    // promise where a callback's result is ignored is the same bug in disguise. These two need types.
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'web/src/**/*.{ts,tsx}'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  ...layerRules,
  {
    // The web console (built by Vite into dist/web) runs in the browser.
    files: ['web/**/*.{ts,tsx}'],
    languageOptions: { globals: globals.browser },
  },
  {
    // Tests read JSON response bodies and assert their shape field by field; typing every body would
    // only restate the assertions.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
