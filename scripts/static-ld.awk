# scripts/static-ld.awk: the linker's messages for a static program (make LINK=static), less
# glibc's warnings that getaddrinfo, getservbyname and the like "require at runtime the
# shared libraries from the glibc version used for linking" (and the "in function" line
# that names each place): in a static program those lookups still load the NSS modules
# /etc/nsswitch.conf names beyond files and dns, which must then be of the same glibc
# (DESIGN.md, "Which libcurl"). Every other line is printed as it came.
/in statically linked applications requires at runtime the shared libraries/ {
	held = ""
	next
}
{
	if (held != "")
		print held
	held = ""
}
/: in function `.*':$/ {
	held = $0
	next
}
{ print }
END {
	if (held != "")
		print held
}
