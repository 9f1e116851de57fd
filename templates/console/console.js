// The console's only script (progressive: every page works without it). A Deny form with an
// empty reason stays on the page and says why; Approve and Deny buttons disable after one
// click so a double tap does not send twice (the server would refuse the second anyway).
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (!(form instanceof HTMLFormElement)) return;
  const button = form.querySelector("button[type=submit]");
  if (button) setTimeout(() => { button.disabled = true; }, 0);
});
