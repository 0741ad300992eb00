/* Record pages (templates/admin/customer/details.html), loaded after static/js/crm.js.
 *
 *   select[data-tab-select]   on a phone the record's tabs are a menu: choosing a section
 *                             shows its tab (and the address follows it, as a tab click
 *                             does); an option whose value is an address (the statement)
 *                             opens that page. The menu follows the tab shown, so a link
 *                             to #tab-timeline opens with "Timeline" chosen.
 *
 * No inline script anywhere (the Content-Security-Policy runs none): this file does it.
 */
(function () {
  'use strict';

  var $ = window.jQuery;
  var menu = document.querySelector('select[data-tab-select]');
  if (!menu || !$) {
    return;
  }

  function tabFor(hash) {
    return document.querySelector('[data-hash-tabs] a[data-toggle="tab"][href="' + hash + '"]');
  }

  menu.addEventListener('change', function () {
    var value = menu.value;
    if (value.charAt(0) !== '#') {
      window.location.assign(value);
      return;
    }
    var tab = tabFor(value);
    if (tab) {
      $(tab).tab('show');
    }
  });

  $(document).on('shown.bs.tab', '[data-hash-tabs] a[data-toggle="tab"]', function (event) {
    menu.value = event.target.getAttribute('href');
  });

  var shown = document.querySelector('[data-hash-tabs] a.active[data-toggle="tab"]');
  if (shown) {
    menu.value = shown.getAttribute('href');
  }
})();
