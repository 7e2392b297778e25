// Progressive enhancement only: every form works without script.
// The verify page: a file dropped on the box, or chosen, is sent at once.
document.addEventListener("DOMContentLoaded", () => {
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  const form = document.getElementById("verify-form");
  if (!drop || !input || !form) return;
  input.addEventListener("change", () => { if (input.files.length) form.submit(); });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; form.submit(); }
  });
});
