/* The admin's behaviour, in one static file loaded on every admin page
 * (templates/admin/master.html, after jQuery, Bootstrap and helpers.js).
 *
 * The Content-Security-Policy (crm/security_headers.py) runs no inline script: no <script>
 * with a body, no on...= attribute, no javascript: link. So the markup says what it wants
 * with data- attributes and this file does it. Every listener is delegated from the
 * document, so it works for markup added later (a new inline contact row) and does not
 * depend on Flask-Admin's own scripts having loaded before this one: those are looked up
 * when a click happens. The listeners run in the capture phase, before any handler on the
 * element itself: Flask-Admin's dropdown toggles stop the click from bubbling, which would
 * otherwise let a "#" link be followed.
 *
 *   a[href="#"]          a control, not a link (Flask-Admin's javascript:void(0)):
 *                        following it is prevented; Bootstrap and Flask-Admin still act
 *   [data-action-name]   a "With selected" entry: Flask-Admin's modelActions.execute(name)
 *   [data-inline-field]  an "Add …" button of an inline list: faForm.addInlineField(el, id)
 *   [data-confirm]       a form (on submit) or a button (on click) that asks first
 *   [data-hash-tabs]     tabs that follow the address: the tab named in the hash opens, and
 *                        the hash follows the tab shown
 */
(function () {
  'use strict';

  function closest(event, selector) {
    var target = event.target;
    return target && target.closest ? target.closest(selector) : null;
  }

  document.addEventListener('click', function (event) {
    var confirming = closest(event, 'button[data-confirm], a[data-confirm]');
    if (confirming && !window.confirm(confirming.getAttribute('data-confirm'))) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }

    var action = closest(event, '[data-action-name]');
    if (action) {
      event.preventDefault();
      window.modelActions.execute(action.getAttribute('data-action-name'));
      return;
    }

    var inline = closest(event, '[data-inline-field]');
    if (inline) {
      event.preventDefault();
      window.faForm.addInlineField(inline, inline.getAttribute('data-inline-field'));
      return;
    }

    if (closest(event, 'a[href="#"]')) {
      event.preventDefault();
    }
  }, true);

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (form.hasAttribute && form.hasAttribute('data-confirm')
        && !window.confirm(form.getAttribute('data-confirm'))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Tabs that follow the address (the customer's record page).
  var $ = window.jQuery;
  var tabs = document.querySelectorAll('[data-hash-tabs] a[data-toggle="tab"]');
  if ($ && tabs.length) {
    var named = Array.prototype.filter.call(tabs, function (link) {
      return location.hash && link.getAttribute('href') === location.hash;
    });
    if (named.length) {
      $(named[0]).tab('show');
    }
    $(tabs).on('shown.bs.tab', function (event) {
      history.replaceState(null, '', event.target.getAttribute('href'));
    });
  }
})();
