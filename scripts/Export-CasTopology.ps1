<#
.SYNOPSIS
    Exports what `cas-gateway import` needs from an Exchange organisation: sites, servers, virtual
    directories, Outlook Anywhere, POP3/IMAP4 settings and mailbox databases, one CLIXML file per
    cmdlet.

.DESCRIPTION
    Run in the Exchange Management Shell (Exchange 2010, 2013, 2016 or 2019; the 2007 shell works
    too) as a member of "View-Only Organization Management" (or any role group that may run the
    Get- cmdlets below). Nothing is changed: the script only reads, and writes files into
    -OutputDirectory:

        Get-ADSite.xml                      Get-ADSite
        Get-ExchangeServer.xml              Get-ExchangeServer
        Get-OwaVirtualDirectory.xml         Get-OwaVirtualDirectory (also Exchange 2003's Exchange/Public/Exchweb)
        Get-EcpVirtualDirectory.xml         Get-EcpVirtualDirectory
        Get-ActiveSyncVirtualDirectory.xml  Get-ActiveSyncVirtualDirectory
        Get-WebServicesVirtualDirectory.xml Get-WebServicesVirtualDirectory
        Get-OabVirtualDirectory.xml         Get-OabVirtualDirectory
        Get-AutodiscoverVirtualDirectory.xml Get-AutodiscoverVirtualDirectory
        Get-MapiVirtualDirectory.xml        Get-MapiVirtualDirectory (Exchange 2013 SP1 and later)
        Get-PowerShellVirtualDirectory.xml  Get-PowerShellVirtualDirectory
        Get-OutlookAnywhere.xml             Get-OutlookAnywhere
        Get-PopSettings.xml                 Get-PopSettings -Server <each Client Access server>
        Get-ImapSettings.xml                Get-ImapSettings -Server <each Client Access server>
        Get-MailboxDatabase.xml             Get-MailboxDatabase (-IncludePreExchange2010/2013 where the shell has it)
        Get-OrganizationRelationship.xml    Get-OrganizationRelationship (hybrid: Exchange Online's endpoints)

    A cmdlet this shell does not have (no Get-MapiVirtualDirectory before 2013 SP1) is skipped with
    a warning; `cas-gateway import` imports what is there. Then copy the directory to where
    cas-gateway runs and follow docs/import.md.

    Works with Windows PowerShell 2.0 (the Exchange 2010 shell) and later.

.PARAMETER OutputDirectory
    Where to write the files (created when missing). Default: .\cas-exports

.PARAMETER ADPropertiesOnly
    Read virtual directories from Active Directory only, without contacting each server's IIS
    (Exchange 2010 and later): much faster in a large organisation and works while a server is
    down. The URLs and authentication methods cas-gateway needs are stored in Active Directory.

.EXAMPLE
    .\Export-CasTopology.ps1 -OutputDirectory C:\cas-exports -ADPropertiesOnly
#>
[CmdletBinding()]
param(
    [string]$OutputDirectory = (Join-Path (Get-Location).Path 'cas-exports'),
    [switch]$ADPropertiesOnly
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

if (-not (Get-Command Get-ExchangeServer -ErrorAction SilentlyContinue)) {
    throw 'Get-ExchangeServer is not available: run this script in the Exchange Management Shell (or a session with Import-PSSession of an Exchange server).'
}
if (-not (Test-Path -LiteralPath $OutputDirectory)) {
    New-Item -ItemType Directory -Path $OutputDirectory | Out-Null
}
$OutputDirectory = (Resolve-Path -LiteralPath $OutputDirectory).Path

function Test-Parameter([string]$Cmdlet, [string]$Parameter) {
    $c = Get-Command $Cmdlet -ErrorAction SilentlyContinue
    return ($null -ne $c) -and $c.Parameters.ContainsKey($Parameter)
}

# Run one cmdlet and write its whole output (no Select-Object: the importer needs the properties
# as Exchange names them) with Export-Clixml, UTF-8.
function Export-Cmdlet([string]$Cmdlet, [hashtable]$Arguments, [object[]]$Objects) {
    $path = Join-Path $OutputDirectory "$Cmdlet.xml"
    if ($null -eq $Objects) {
        if (-not (Get-Command $Cmdlet -ErrorAction SilentlyContinue)) {
            Write-Warning "$Cmdlet is not available in this shell; skipped (cas-gateway import works without it)"
            return
        }
        if ($null -eq $Arguments) { $Arguments = @{} }
        if ($ADPropertiesOnly -and (Test-Parameter $Cmdlet 'ADPropertiesOnly')) { $Arguments['ADPropertiesOnly'] = $true }
        $Objects = @(& $Cmdlet @Arguments)
    }
    $Objects | Export-Clixml -LiteralPath $path -Encoding UTF8
    Write-Host ("{0,-38} {1,4} object(s) -> {2}" -f $Cmdlet, @($Objects).Count, $path)
}

Export-Cmdlet 'Get-ADSite' $null $null
$servers = @(Get-ExchangeServer)
Export-Cmdlet 'Get-ExchangeServer' $null $servers

foreach ($c in 'Get-OwaVirtualDirectory', 'Get-EcpVirtualDirectory', 'Get-ActiveSyncVirtualDirectory',
               'Get-WebServicesVirtualDirectory', 'Get-OabVirtualDirectory', 'Get-AutodiscoverVirtualDirectory',
               'Get-MapiVirtualDirectory', 'Get-PowerShellVirtualDirectory') {
    Export-Cmdlet $c $null $null
}
Export-Cmdlet 'Get-OutlookAnywhere' $null $null

# POP3 and IMAP4 settings are per server: every server with the Client Access role (Exchange 2007
# to 2013) or the Mailbox role (2016 and later, where it includes Client Access). Exchange 2003
# servers have none the shell can read: give them to the importer with --exchange2003-pop3/-imap4.
$cas = @($servers | Where-Object {
    $v = [string]$_.AdminDisplayVersion
    $r = [string]$_.ServerRole
    ($v -notmatch 'Version 6\.') -and (($r -match 'ClientAccess') -or (($v -match 'Version 15\.[12]') -and ($r -match 'Mailbox')))
})
foreach ($pair in @(@('Get-PopSettings', 'POP3'), @('Get-ImapSettings', 'IMAP4'))) {
    $cmdlet = $pair[0]
    $all = @()
    foreach ($s in $cas) {
        try {
            $all += @(& $cmdlet -Server ([string]$s.Name))
        } catch {
            Write-Warning ("{0} -Server {1}: {2}; its {3} settings are not exported" -f $cmdlet, $s.Name, $_.Exception.Message, $pair[1])
        }
    }
    Export-Cmdlet $cmdlet $null $all
}

# Databases of older versions are listed only when asked for, under a parameter named after the
# shell's own version.
$dbArgs = @{}
foreach ($p in 'IncludePreExchange2013', 'IncludePreExchange2010', 'IncludePreExchange2007') {
    if (Test-Parameter 'Get-MailboxDatabase' $p) { $dbArgs[$p] = $true; break }
}
Export-Cmdlet 'Get-MailboxDatabase' $dbArgs $null

# Hybrid (R-HYB-1): the relationship with the Exchange Online tenant names its domains and cloud
# endpoints. An organisation without one exports an empty file.
Export-Cmdlet 'Get-OrganizationRelationship' $null $null

Write-Host ''
Write-Host "Done. Next, where cas-gateway runs:"
Write-Host "  cas-gateway import --from <copy of $OutputDirectory> --out manifests"
Write-Host "Also export the mailbox directory if you use the CSV directory (docs/directory.md), remote mailboxes too."
