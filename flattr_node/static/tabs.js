/* On a narrow screen the dashboard's tabs are one row that scrolls sideways:
   bring the current tab into view. Without JavaScript the row still scrolls. */
(function () {
  "use strict";
  var current = document.querySelector('nav.tabs [aria-current="page"]');
  if (current && current.scrollIntoView) { current.scrollIntoView({block: "nearest", inline: "center"}); }
})();
