// Vite configuration (a plain object: `defineConfig` is only a typing helper).
export default {
  // Top-level await in main.js; every browser that runs WebAssembly with externref has it.
  build: { target: 'es2022' },
  // The dev server's dependency pre-bundling would move core.js away from skedge_bg.wasm.
  optimizeDeps: { exclude: ['skedge'] },
  // The artifact is an asset, not a module.
  assetsInclude: ['**/*.skedge'],
};
