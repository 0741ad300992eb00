/* The invoice editor (templates/admin/invoice/_editor.html) and the standalone credit note
 * (templates/admin/credit_note/raise.html): lines as a grid, with live totals.
 *
 * The page works without this file: the server renders the rows (blank ones are ignored on
 * save) and recomputes every amount when it saves. This file only makes the grid pleasant:
 *
 *   [data-add-line]      adds a row, cloned from <template id="...-line-template">
 *   [data-remove-line]   removes a row (an existing line is marked for deletion instead)
 *   [data-line-net], [data-total]
 *                        the line's net and the totals, recomputed as you type: a preview
 *                        computed like the server (quantity x price half-up to the cent, then
 *                        tax on the net half-up), in whole hundredths with BigInt, never
 *                        floating point; written like the server's formatter ("£1,234.50",
 *                        its currency read from data-money-zero, e.g. "£0.00")
 *   [data-invoice-customer]
 *                        when the customer changes, the contact and work-address pickers
 *                        are refilled with that customer's records only
 *
 * No inline script anywhere (the Content-Security-Policy forbids it): everything is found by
 * its data- attribute here.
 */
(function () {
  'use strict';

  var form = document.querySelector('[data-invoice-editor], [data-line-grid]');
  if (!form) {
    return;
  }
  var body = form.querySelector('[data-lines]');
  var template = document.getElementById(form.getAttribute('data-line-template') ||
                                         'invoice-line-template');

  // --- numbers -------------------------------------------------------------------------
  var zero = form.getAttribute('data-money-zero') || '0.00';
  var at = zero.indexOf('0.00');
  var prefix = at >= 0 ? zero.slice(0, at) : '';
  var suffix = at >= 0 ? zero.slice(at + 4) : '';

  /* "1,234.5" -> 123450n (places = 2), or null when it is not a plain number with at most
   * that many decimals (the server says why on save). */
  function parse(text, places) {
    var value = String(text || '').trim();
    if (/^\d{1,3}(,\d{3})+(\.\d*)?$/.test(value)) {
      value = value.replace(/,/g, '');
    }
    var match = /^(\d*)(?:\.(\d*))?$/.exec(value);
    if (!match || (match[1] === '' && !match[2]) || (match[2] || '').length > places) {
      return null;
    }
    var decimals = (match[2] || '') + '0'.repeat(places - (match[2] || '').length);
    return BigInt((match[1] || '0') + decimals);
  }

  function halfUp(numerator, denominator) {
    return (numerator * 2n + denominator) / (denominator * 2n);
  }

  function money(cents) {
    var text = cents.toString().padStart(3, '0');
    var whole = text.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return prefix + whole + '.' + text.slice(-2) + suffix;
  }

  // --- rows ----------------------------------------------------------------------------
  function rows() {
    return Array.prototype.filter.call(body.querySelectorAll('[data-line]'), function (row) {
      return !row.hidden;
    });
  }

  function field(row, name) {
    return row.querySelector('[data-line-' + name + ']');
  }

  function isBlank(row) {
    var description = field(row, 'description');
    var price = field(row, 'price');
    return !row.querySelector('input[name$="-id"]') &&
      !(description && description.value.trim()) && !(price && price.value.trim());
  }

  function nextIndex() {
    var highest = -1;
    form.querySelectorAll('[name^="lines-"], [name^="line-"]').forEach(function (input) {
      var match = /^lines?-(\d+)-/.exec(input.name);
      if (match) {
        highest = Math.max(highest, parseInt(match[1], 10));
      }
    });
    return highest + 1;
  }

  function addRow() {
    var html = template.innerHTML.replace(/__INDEX__/g, String(nextIndex()));
    var holder = document.createElement('tbody');
    holder.innerHTML = html.trim();
    var row = holder.firstElementChild;
    enhance(row);
    body.appendChild(row);
    return row;
  }

  function removeRow(row) {
    var existing = row.querySelector('input[name$="-id"]');
    if (existing) {
      field(row, 'remove').checked = true;
      row.hidden = true;
    } else {
      row.parentNode.removeChild(row);
    }
    if (!rows().length) {
      addRow();
    }
    recompute();
  }

  function enhance(row) {
    var box = row.querySelector('.line-remove-box');
    var button = row.querySelector('[data-remove-line]');
    if (box && button) {
      box.hidden = true;
      button.hidden = false;
    }
  }

  // --- totals --------------------------------------------------------------------------
  function recompute() {
    var subtotal = 0n;
    var tax = 0n;
    rows().forEach(function (row) {
      var out = field(row, 'net');
      var quantity = parse(field(row, 'quantity') ? field(row, 'quantity').value : '1', 2);
      var price = parse(field(row, 'price') ? field(row, 'price').value : '', 2);
      var rate = parse(field(row, 'tax') ? field(row, 'tax').value || '0' : '0', 2);
      if (quantity === null || price === null || rate === null) {
        if (out) {
          out.textContent = '';
        }
        return;
      }
      var net = halfUp(quantity * price, 100n);
      subtotal += net;
      tax += halfUp(net * rate, 10000n);
      if (out) {
        out.textContent = money(net);
      }
    });
    var shown = {subtotal: subtotal, tax: tax, total: subtotal + tax};
    form.querySelectorAll('[data-total]').forEach(function (cell) {
      cell.textContent = money(shown[cell.getAttribute('data-total')]);
    });
  }

  // --- the customer's contacts and work addresses ---------------------------------------
  function refill(name, customerId) {
    var group = form.querySelector('[data-party="' + name + '"]');
    var lookup = form.getAttribute('data-lookup-url');
    if (!group || !lookup) {
      return;
    }
    var select = group.querySelector('select');
    var keep = select.options[0];
    var done = function (items) {
      select.innerHTML = '';
      select.appendChild(keep);
      items.forEach(function (item) {
        var option = document.createElement('option');
        option.value = item[0];
        option.textContent = item[1];
        select.appendChild(option);
      });
      select.value = '';
      group.hidden = items.length === 0;
    };
    if (!customerId) {
      done([]);
      return;
    }
    var url = lookup + '?name=' + name + '&customer_id=' + encodeURIComponent(customerId);
    fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(done, function () { done([]); });
  }

  // --- wiring --------------------------------------------------------------------------
  form.addEventListener('click', function (event) {
    var target = event.target;
    if (target.closest('[data-add-line]')) {
      event.preventDefault();
      var row = addRow();
      var first = field(row, 'description');
      if (first) {
        first.focus();
      }
    } else if (target.closest('[data-remove-line]')) {
      event.preventDefault();
      removeRow(target.closest('[data-line]'));
    }
  });
  form.addEventListener('input', recompute);
  form.addEventListener('change', recompute);

  var customer = form.querySelector('[data-invoice-customer]');
  if (customer && window.jQuery) {
    // select2 reports a choice through jQuery's change event only.
    window.jQuery(customer).on('change', function () {
      refill('contact', customer.value);
      refill('work_address', customer.value);
    });
  }

  rows().forEach(enhance);
  // Without this script the page offers a few blank rows to fill in; with it, "Add a line"
  // does that: a new invoice keeps one blank row, an invoice with lines none.
  var blanks = rows().filter(isBlank);
  var filled = rows().length - blanks.length;
  blanks.slice(filled ? 0 : 1).forEach(function (row) {
    row.parentNode.removeChild(row);
  });
  form.querySelectorAll('[data-add-line]').forEach(function (button) {
    button.hidden = false;
  });
  form.querySelectorAll('[data-no-script-hint]').forEach(function (hint) {
    hint.hidden = true;
  });
  recompute();
})();
