// Copy buttons for the embed snippets. Without JavaScript the textareas stay
// selectable and the buttons hidden.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var area = document.getElementById(button.getAttribute("data-copy"));
      area.select();
      if (navigator.clipboard) {
        navigator.clipboard.writeText(area.value).then(function () { button.textContent = "Copied"; });
      } else {
        document.execCommand("copy");
        button.textContent = "Copied";
      }
    });
  });
});
