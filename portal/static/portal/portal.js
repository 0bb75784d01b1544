// Copy buttons: the command next to each button goes to the clipboard. navigator.clipboard needs a secure
// context (HTTPS or localhost); on a plain-HTTP registry the text is selected and copied the old way.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.dataset.copy);
  var text = source.textContent.trim();
  function done(ok) {
    button.textContent = ok ? "Copied" : "Select and copy";
    setTimeout(function () { button.textContent = "Copy"; }, 2000);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    return;
  }
  var range = document.createRange();
  range.selectNodeContents(source);
  var selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  var copied = false;
  try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
  done(copied);
});
