// `npm run lint`: what a reviewer would catch and the compiler does not. Type-aware, so it reads
// tsconfig.json (sources) and test/tsconfig.json (tests).
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "gateway/generated/**", "docs/**"] },
  {
    files: ["gateway/**/*.ts", "bot/**/*.ts", "test/**/*.ts", "*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: {
      // A promise nobody awaits or catches fails silently (or crashes the process): in timer
      // callbacks and event handlers above all.
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: true, attributes: false } }],
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/only-throw-error": "error",
    },
  },
);
