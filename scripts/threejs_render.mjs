// Load .glb files in a real web client: three.js's GLTFLoader (with MeshoptDecoder and
// KTX2Loader, Basis transcoder from three's own examples) in
// headless Chromium, driven by playwright-core (npm; the browser is Debian's chromium,
// software WebGL). For each file: a render at rest and one with a morph target at 1
// (MORPH: a name, or several joined by commas).
//
//   node scripts/threejs_render.mjs [--mouth] OUT_DIR MORPH FILE.glb [FILE.glb ...]
//
// --mouth: a 3x close-up of the mouth (the same camera, a smaller window of its view),
// to look at the teeth and gums with jawOpen.
// Writes OUT_DIR/<file stem>.rest.png and .<MORPH>.png and prints one JSON line per file:
// meshes, morph target names, which maps each material has, and how many pixels the
// morph changed. Exit 2 on bad usage; a file three.js cannot load gives {"error": ...}.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BROWSER = process.env.CHROMIUM || "/usr/bin/chromium";
const ORIGIN = "http://ganfit.local";
const args = process.argv.slice(2);
const mouth = args[0] === "--mouth";
const [outDir, morph, ...files] = mouth ? args.slice(1) : args;
if (!outDir || !morph || files.length === 0) {
  console.error("usage: node scripts/threejs_render.mjs [--mouth] OUT_DIR MORPH FILE.glb [...]");
  process.exit(2);
}

const PAGE = `<!doctype html><html><body style="margin:0">
<script type="importmap">{"imports": {"three": "/three/build/three.module.js",
  "three/addons/": "/three/examples/jsm/"}}</script>
<script type="module">
import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { MeshoptDecoder } from "three/addons/libs/meshopt_decoder.module.js";
import { KTX2Loader } from "three/addons/loaders/KTX2Loader.js";
const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setSize(512, 512);
document.body.appendChild(renderer.domElement);
const ktx2 = new KTX2Loader().setTranscoderPath("/three/examples/jsm/libs/basis/")
  .detectSupport(renderer);
const loader = new GLTFLoader().setMeshoptDecoder(MeshoptDecoder).setKTX2Loader(ktx2);
window.render = async (url, morph, mouth) => {
  const gltf = await loader.loadAsync(url);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0x404850);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x303030, 1.2));
  const sun = new THREE.DirectionalLight(0xffffff, 2.0);
  sun.position.set(0.5, 0.6, 1.0);
  scene.add(sun);
  const meshes = [];
  gltf.scene.traverse((o) => { if (o.isMesh) meshes.push(o); });
  // Show the full head only (LOD0 / the one mesh), as an engine would at close range.
  const names = [...new Set(meshes.map((m) => m.parent && m.parent.isGroup && !m.parent.isScene
    ? m.parent.name : m.name))];
  const first = names[0];
  for (const m of meshes) {
    const owner = m.parent && m.parent.isGroup && !m.parent.isScene ? m.parent.name : m.name;
    m.visible = owner === first;
  }
  scene.add(gltf.scene);
  const shown = meshes.filter((m) => m.visible);
  const box = new THREE.Box3();
  shown.forEach((m) => box.expandByObject(m));
  const size = box.getSize(new THREE.Vector3()), centre = box.getCenter(new THREE.Vector3());
  const camera = new THREE.PerspectiveCamera(30, 1, 0.01, 100);
  camera.position.set(centre.x, centre.y + size.y * 0.05, centre.z + size.y * 1.7);
  camera.lookAt(centre);
  // Where the mouth of a head-and-shoulders ICT mesh falls in that view.
  if (mouth) camera.setViewOffset(512, 512, 171, 215, 171, 171);
  const dict = shown[0].morphTargetDictionary || {};
  const shot = () => { renderer.render(scene, camera); return renderer.domElement.toDataURL("image/png"); };
  const rest = shot();
  for (const m of shown) {
    for (const name of morph.split(",")) {
      if (m.morphTargetDictionary && name in m.morphTargetDictionary) {
        m.morphTargetInfluences[m.morphTargetDictionary[name]] = 1;
      }
    }
  }
  const moved = shot();
  const maps = {};
  for (const m of shown) {
    const mat = m.material;
    maps[mat.name] = ["map", "normalMap", "roughnessMap", "aoMap"].filter((k) => mat[k]);
  }
  return { objects: names, targets: Object.keys(dict).sort((a, b) => dict[a] - dict[b]),
           maps, rest, moved };
};
window.ready = true;
</script></body></html>`;

function decode(dataUrl) {
  return Buffer.from(dataUrl.split(",")[1], "base64");
}

const browser = await chromium.launch({
  executablePath: BROWSER,
  args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"],
});
try {
  const page = await browser.newPage({ viewport: { width: 512, height: 512 } });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === "/") return route.fulfill({ contentType: "text/html", body: PAGE });
    if (path.startsWith("/three/")) {
      return route.fulfill({ path: join(ROOT, "node_modules", path),
                             contentType: path.endsWith(".wasm") ? "application/wasm"
                               : "text/javascript" });
    }
    if (path.startsWith("/file/")) {
      return route.fulfill({ body: readFileSync(decodeURIComponent(path.slice(5))),
                             contentType: "model/gltf-binary" });
    }
    return route.fulfill({ status: 404, body: "" });
  });
  await page.goto(`${ORIGIN}/`);
  await page.waitForFunction(() => window.ready === true);
  mkdirSync(outDir, { recursive: true });
  for (const file of files) {
    const stem = basename(file).replace(/\.glb$/, "");
    try {
      const url = `/file${encodeURI(resolve(file))}`;
      const out = await page.evaluate(([u, m, c]) => window.render(u, m, c), [url, morph, mouth]);
      const rest = join(outDir, `${stem}.rest.png`), moved = join(outDir, `${stem}.${morph}.png`);
      writeFileSync(rest, decode(out.rest));
      writeFileSync(moved, decode(out.moved));
      console.log(JSON.stringify({ file, objects: out.objects, targets: out.targets,
                                   maps: out.maps, rest, moved }));
    } catch (error) {
      console.log(JSON.stringify({ file, error: String(error.message || error) }));
    }
  }
} finally {
  await browser.close();
}
