// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Participant roles
/// @notice Bit flags for the roles an onboarded organisation can hold. A role mask is satisfied
/// by any one of its bits; the mask `ANY` (zero) by every active participant whatever its roles.
library Roles {
    uint8 internal constant ANY = 0;
    uint8 internal constant SUPPLIER = 1;
    uint8 internal constant BUYER = 2;
    uint8 internal constant FINANCIER = 4;
    uint8 internal constant AUDITOR = 8;
    uint8 internal constant ALL = SUPPLIER | BUYER | FINANCIER | AUDITOR;
    /// @dev Who may hold a receivable: suppliers (and their own lower-tier suppliers) and financiers.
    uint8 internal constant HOLDER = SUPPLIER | FINANCIER;
}

/// @title The participant registry every Anchorline contract asks before it lets an address act.
/// @dev It is also the platform's single pause switch: while it is paused, {activeId} and
/// {activeIds} revert, so every gated action of every contract stops at once. Participants get a
/// compact id (from 1, in onboarding order), so that contracts can store a counterparty in 32
/// bits and pack a whole receivable into one storage slot.
interface IParticipantRegistry {
    /// @notice `account` is not onboarded, is suspended, or holds none of the roles in `roleMask`.
    error ParticipantNotActive(address account, uint8 roleMask);

    /// @notice True when the operator has paused the platform.
    function paused() external view returns (bool);

    /// @notice True when `account` is onboarded, not suspended, and holds at least one of the
    /// roles in `roleMask` (any role at all when `roleMask` is zero).
    function isActive(address account, uint8 roleMask) external view returns (bool);

    /// @notice The id of `account` when it is active with a role in `roleMask`, otherwise zero.
    /// Reverts while the platform is paused.
    function activeId(address account, uint8 roleMask) external view returns (uint32);

    /// @notice {activeId} of two accounts in one call (a transfer's two ends).
    function activeIds(address first, uint8 firstMask, address second, uint8 secondMask)
        external
        view
        returns (uint32 firstId, uint32 secondId);

    /// @notice The account of participant `id` (zero address for an unknown id).
    function accountOf(uint32 id) external view returns (address);
}
