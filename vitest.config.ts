import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{crds,model,operator,sidecar,cli,importer}/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["node_modules/**", "dist/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
