package postfixconf

// smtpd restriction names (postconf(5), "SMTPD ACCESS RESTRICTIONS"),
// with how many arguments follow each, and whether postcote implements
// them. Names not listed here are errors unless they are restriction
// classes (smtpd_restriction_classes) or user-defined parameters.

type restriction struct {
	args   int  // arguments that follow (a table, a domain, seconds)
	tables bool // the argument is a lookup table
	impl   bool
}

var restrictionTable = map[string]restriction{
	"permit":                       {impl: true},
	"reject":                       {impl: true},
	"defer":                        {impl: true},
	"defer_if_permit":              {},
	"defer_if_reject":              {},
	"warn_if_reject":               {},
	"permit_mynetworks":            {impl: true},
	"permit_sasl_authenticated":    {impl: true},
	"reject_unauth_destination":    {impl: true},
	"defer_unauth_destination":     {impl: true},
	"reject_sender_login_mismatch": {impl: true},
	"reject_authenticated_sender_login_mismatch":   {},
	"reject_unauthenticated_sender_login_mismatch": {},
	"reject_known_sender_login_mismatch":           {},
	"check_client_access":                          {args: 1, tables: true, impl: true},
	"check_reverse_client_hostname_access":         {args: 1, tables: true},
	"check_helo_access":                            {args: 1, tables: true, impl: true},
	"check_sender_access":                          {args: 1, tables: true, impl: true},
	"check_recipient_access":                       {args: 1, tables: true, impl: true},
	"check_etrn_access":                            {args: 1, tables: true},
	"check_ccert_access":                           {args: 1, tables: true},
	"check_sasl_access":                            {args: 1, tables: true},
	"check_helo_a_access":                          {args: 1, tables: true},
	"check_helo_mx_access":                         {args: 1, tables: true},
	"check_helo_ns_access":                         {args: 1, tables: true},
	"check_sender_a_access":                        {args: 1, tables: true},
	"check_sender_mx_access":                       {args: 1, tables: true},
	"check_sender_ns_access":                       {args: 1, tables: true},
	"check_recipient_a_access":                     {args: 1, tables: true},
	"check_recipient_mx_access":                    {args: 1, tables: true},
	"check_recipient_ns_access":                    {args: 1, tables: true},
	"check_client_a_access":                        {args: 1, tables: true},
	"check_client_mx_access":                       {args: 1, tables: true},
	"check_client_ns_access":                       {args: 1, tables: true},
	"check_policy_service":                         {args: 1},
	"permit_tls_clientcerts":                       {},
	"permit_tls_all_clientcerts":                   {},
	"permit_inet_interfaces":                       {},
	"permit_auth_destination":                      {impl: true},
	"permit_mx_backup":                             {},
	"permit_dnswl_client":                          {args: 1, impl: true},
	"permit_rhswl_client":                          {args: 1, impl: true},
	"reject_rbl_client":                            {args: 1, impl: true},
	"reject_rhsbl_client":                          {args: 1, impl: true},
	"reject_rhsbl_reverse_client":                  {args: 1, impl: true},
	"reject_rhsbl_helo":                            {args: 1, impl: true},
	"reject_rhsbl_sender":                          {args: 1, impl: true},
	"reject_rhsbl_recipient":                       {args: 1, impl: true},
	"reject_unknown_client_hostname":               {impl: true},
	"reject_unknown_reverse_client_hostname":       {impl: true},
	"reject_unknown_helo_hostname":                 {impl: true},
	"reject_unknown_sender_domain":                 {impl: true},
	"reject_unknown_recipient_domain":              {impl: true},
	"reject_non_fqdn_helo_hostname":                {impl: true},
	"reject_invalid_helo_hostname":                 {impl: true},
	"reject_non_fqdn_sender":                       {impl: true},
	"reject_non_fqdn_recipient":                    {impl: true},
	"reject_unlisted_sender":                       {},
	"reject_unlisted_recipient":                    {impl: true},
	"reject_unverified_sender":                     {},
	"reject_unverified_recipient":                  {},
	"reject_unauth_pipelining":                     {impl: true},
	"reject_plaintext_session":                     {impl: true},
	"reject_multi_recipient_bounce":                {impl: true},
	"reject_unknown_client":                        {impl: true},
	"reject_unknown_hostname":                      {impl: true},
	"reject_non_fqdn_hostname":                     {impl: true},
	"reject_invalid_hostname":                      {impl: true},
	"sleep":                                        {args: 1},
}

// RestrictionStatus says whether name is a Postfix smtpd restriction and
// whether postcote implements it.
func RestrictionStatus(name string) (known, implemented bool) {
	r, ok := restrictionTable[name]
	return ok, r.impl
}

// ImplementedRestrictions lists the restrictions marked implemented.
func ImplementedRestrictions() []string {
	var names []string
	for n, r := range restrictionTable {
		if r.impl {
			names = append(names, n)
		}
	}
	return names
}
